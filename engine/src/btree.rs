//! Copy-on-write B+trees over chunks.
//!
//! A modification rewrites only the nodes on the paths to the changed keys
//! and returns a new root; old roots stay readable, which is what makes every
//! old header a consistent snapshot. Interior entries hold the last key of
//! their child and the child's reduce. Nodes are never merged when they get
//! small (couchstore does not rebalance either); empty nodes disappear.
//!
//! Children are always written before their parent, so a child's offset is
//! below its parent's: a reader rejects any other pointer as corruption,
//! which also rules out cycles in a damaged file.

use crate::error::{Error, Result};
use crate::format::{
    put_bytes, put_reduce, AppendFile, ChunkSource, NodePtr, PositionHasher, Reader, Reduce,
};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::ops::{Bound, Range};
use std::sync::Arc;

const LEAF: u8 = 0;
const INTERIOR: u8 = 1;
/// Deeper than this is corruption: fan-out >= 2 with 2^40 entries is 40 deep.
const MAX_DEPTH: usize = 48;

/// What a leaf entry contributes to its subtree's reduce.
pub type LeafReduce = fn(key: &[u8], value: &[u8]) -> Result<Reduce>;

/// A visitor of leaf entries (key, value).
pub type Visit<'a, R> = dyn FnMut(&[u8], &[u8]) -> Result<R> + 'a;

/// One insert-or-replace (`Some`) or remove (`None`).
pub type Action = (Vec<u8>, Option<Vec<u8>>);

#[derive(Debug)]
enum Node {
    Leaf(Vec<(Vec<u8>, Vec<u8>)>),
    Interior(Vec<(Vec<u8>, NodePtr)>),
}

/// The shape of one tree: its fan-out and its reduce.
#[derive(Clone, Copy, Debug)]
pub struct Tree {
    /// Maximum entries per node (at least 2).
    pub fanout: usize,
    /// Reduce of one leaf entry.
    pub leaf_reduce: LeafReduce,
}

fn encode_leaf<K: AsRef<[u8]>, V: AsRef<[u8]>>(entries: &[(K, V)]) -> Vec<u8> {
    let mut out = vec![LEAF];
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (k, v) in entries {
        put_bytes(&mut out, k.as_ref());
        put_bytes(&mut out, v.as_ref());
    }
    out
}

fn encode_interior(entries: &[(Vec<u8>, NodePtr)]) -> Vec<u8> {
    let mut out = vec![INTERIOR];
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (k, p) in entries {
        put_bytes(&mut out, k);
        out.extend_from_slice(&p.pos.to_be_bytes());
        put_reduce(&mut out, p.reduce);
    }
    out
}

fn read_node(src: &dyn ChunkSource, ptr: NodePtr) -> Result<Node> {
    let bytes = src.chunk(ptr.pos)?;
    let mut r = Reader::new(&bytes, ptr.pos, "tree node");
    let kind = r.u8()?;
    let count = r.u32()? as usize;
    if count == 0 {
        return Err(r.corrupt("empty node".into()));
    }
    let node = match kind {
        LEAF => {
            let mut entries = Vec::with_capacity(count.min(4096));
            for _ in 0..count {
                entries.push((r.bytes()?, r.bytes()?));
            }
            Node::Leaf(entries)
        }
        INTERIOR => {
            let mut entries = Vec::with_capacity(count.min(4096));
            for _ in 0..count {
                let key = r.bytes()?;
                let pos = r.u64()?;
                if pos >= ptr.pos {
                    return Err(r.corrupt(format!("child at {pos} not below its parent")));
                }
                entries.push((
                    key,
                    NodePtr {
                        pos,
                        reduce: r.reduce()?,
                    },
                ));
            }
            Node::Interior(entries)
        }
        other => return Err(r.corrupt(format!("node kind {other}"))),
    };
    r.finish()?;
    Ok(node)
}

/// A node decoded in place for the read-only walks: keys and values are
/// ranges of the chunk's bytes (one allocation for the entries, none per
/// key or value). Decoding accepts and rejects exactly what [`read_node`]
/// does.
#[derive(Debug)]
struct NodeView {
    bytes: Vec<u8>,
    leaf: bool,
    /// Leaf: (key, value); interior: (separator key, empty).
    entries: Vec<(Range<usize>, Range<usize>)>,
    /// Interior only: the children, in entry order.
    children: Vec<NodePtr>,
}

impl NodeView {
    /// An interior node's entries as [`read_node`] decodes them (owned
    /// separator keys); empty for a leaf.
    fn into_interior(self) -> Vec<(Vec<u8>, NodePtr)> {
        (0..self.children.len())
            .map(|i| (self.key(i).to_vec(), self.children[i]))
            .collect()
    }

    fn key(&self, i: usize) -> &[u8] {
        &self.bytes[self.entries[i].0.clone()]
    }

    fn value(&self, i: usize) -> &[u8] {
        &self.bytes[self.entries[i].1.clone()]
    }
}

fn read_node_view(src: &dyn ChunkSource, ptr: NodePtr) -> Result<NodeView> {
    let bytes = src.chunk(ptr.pos)?;
    let mut r = Reader::new(&bytes, ptr.pos, "tree node");
    let kind = r.u8()?;
    let count = r.u32()? as usize;
    if count == 0 {
        return Err(r.corrupt("empty node".into()));
    }
    let mut entries = Vec::with_capacity(count.min(4096));
    let mut children = Vec::new();
    let leaf = match kind {
        LEAF => {
            for _ in 0..count {
                let key = r.bytes_range()?;
                let value = r.bytes_range()?;
                entries.push((key, value));
            }
            true
        }
        INTERIOR => {
            children.reserve(count.min(4096));
            for _ in 0..count {
                let key = r.bytes_range()?;
                let pos = r.u64()?;
                if pos >= ptr.pos {
                    return Err(r.corrupt(format!("child at {pos} not below its parent")));
                }
                children.push(NodePtr {
                    pos,
                    reduce: r.reduce()?,
                });
                entries.push((key, 0..0));
            }
            false
        }
        other => return Err(r.corrupt(format!("node kind {other}"))),
    };
    r.finish()?;
    Ok(NodeView {
        bytes,
        leaf,
        entries,
        children,
    })
}

/// The recount of a whole tree against the reduce its header holds.
fn check_root(root: NodePtr, reduce: Reduce) -> Result<Reduce> {
    if reduce != root.reduce {
        return Err(Error::Verify(format!(
            "root reduce {:?} differs from recount {reduce:?}",
            root.reduce
        )));
    }
    Ok(reduce)
}

/// A child's recount against its parent's entry: the reduce, and its last
/// key (in `last`) against the separator.
fn check_child(child: NodePtr, reduce: Reduce, last: &[u8], separator: &[u8]) -> Result<()> {
    if reduce != child.reduce {
        return Err(Error::Verify(format!(
            "reduce of node at {} is {:?}, recount {reduce:?}",
            child.pos, child.reduce
        )));
    }
    if last != separator {
        return Err(Error::Verify(format!(
            "separator key of node at {} is not its last key",
            child.pos
        )));
    }
    Ok(())
}

/// A walk deeper than [`MAX_DEPTH`] can only come from a damaged file.
fn check_depth(depth: usize, ptr: NodePtr) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(too_deep(ptr));
    }
    Ok(())
}

fn too_deep(ptr: NodePtr) -> Error {
    Error::Corrupted {
        offset: ptr.pos,
        what: "tree deeper than any real tree".into(),
    }
}

/// Look `key` up.
pub fn get(src: &dyn ChunkSource, root: Option<NodePtr>, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let Some(mut ptr) = root else {
        return Ok(None);
    };
    for _ in 0..MAX_DEPTH {
        // Decoded in place: a lookup copies only the value it returns (the
        // same searches over the same keys as on a decoded node).
        let node = read_node_view(src, ptr)?;
        let bytes = &node.bytes;
        if node.leaf {
            return Ok(node
                .entries
                .binary_search_by(|(k, _)| bytes[k.clone()].cmp(key))
                .ok()
                .map(|i| node.value(i).to_vec()));
        }
        let i = node
            .entries
            .partition_point(|(last, _)| &bytes[last.clone()] < key);
        let Some(child) = node.children.get(i) else {
            return Ok(None);
        };
        ptr = *child;
    }
    Err(too_deep(ptr))
}

fn above_lower(key: &[u8], lo: Bound<&[u8]>) -> bool {
    match lo {
        Bound::Unbounded => true,
        Bound::Included(l) => key >= l,
        Bound::Excluded(l) => key > l,
    }
}

fn below_upper(key: &[u8], hi: Bound<&[u8]>) -> bool {
    match hi {
        Bound::Unbounded => true,
        Bound::Included(h) => key <= h,
        Bound::Excluded(h) => key < h,
    }
}

/// Visit every entry with a key in `lo..hi`, in key order, until `visit`
/// returns false.
pub fn range(
    src: &dyn ChunkSource,
    root: Option<NodePtr>,
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
    visit: &mut Visit<'_, bool>,
) -> Result<()> {
    if let Some(root) = root {
        range_node(src, root, lo, hi, visit, 0)?;
    }
    Ok(())
}

fn range_node(
    src: &dyn ChunkSource,
    ptr: NodePtr,
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
    visit: &mut Visit<'_, bool>,
    depth: usize,
) -> Result<bool> {
    check_depth(depth, ptr)?;
    match read_node(src, ptr)? {
        Node::Leaf(entries) => {
            for (k, v) in &entries {
                if !above_lower(k, lo) {
                    continue;
                }
                if !below_upper(k, hi) || !visit(k, v)? {
                    return Ok(false);
                }
            }
        }
        Node::Interior(entries) => {
            for (last, child) in &entries {
                if crate::mutants::active(crate::mutants::Mutant::ScanSkipsSeparatorChild) {
                    // A child whose last key is at or below the lower
                    // bound has nothing in range.
                    if let Bound::Included(l) | Bound::Excluded(l) = lo {
                        if last.as_slice() <= l {
                            continue;
                        }
                    }
                } else if !above_lower(last, lo) {
                    continue;
                }
                if !range_node(src, *child, lo, hi, visit, depth + 1)? {
                    return Ok(false);
                }
            }
        }
    }
    Ok(true)
}

impl Tree {
    fn leaf_sum<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, entries: &[(K, V)]) -> Result<Reduce> {
        entries.iter().try_fold(Reduce::default(), |acc, (k, v)| {
            Ok(acc + (self.leaf_reduce)(k.as_ref(), v.as_ref())?)
        })
    }

    /// Split `n` entries into pieces of at most `fanout`, as even as possible.
    fn pieces(&self, n: usize) -> Vec<usize> {
        let count = n.div_ceil(self.fanout.max(2));
        (0..count)
            .map(|i| n / count + usize::from(i < n % count))
            .collect()
    }

    fn write_leaves<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        out: &mut AppendFile,
        entries: &[(K, V)],
    ) -> Result<Vec<(Vec<u8>, NodePtr)>> {
        let mut result = Vec::new();
        let mut rest = entries;
        for size in self.pieces(entries.len()) {
            let (piece, tail) = rest.split_at(size);
            rest = tail;
            let reduce = self.leaf_sum(piece)?;
            let pos = out.append_chunk(&encode_leaf(piece));
            let last = piece[piece.len() - 1].0.as_ref().to_vec();
            result.push((last, NodePtr { pos, reduce }));
        }
        Ok(result)
    }

    fn write_interiors(
        &self,
        out: &mut AppendFile,
        entries: Vec<(Vec<u8>, NodePtr)>,
    ) -> Vec<(Vec<u8>, NodePtr)> {
        let mut result = Vec::new();
        let mut rest = entries.as_slice();
        for size in self.pieces(entries.len()) {
            let (piece, tail) = rest.split_at(size);
            rest = tail;
            let reduce = piece
                .iter()
                .fold(Reduce::default(), |acc, (_, p)| acc + p.reduce);
            let pos = out.append_chunk(&encode_interior(piece));
            let last = piece[piece.len() - 1].0.clone();
            result.push((last, NodePtr { pos, reduce }));
        }
        result
    }

    /// Apply `actions` (sorted by key, keys unique) and return the new root.
    pub fn modify(
        &self,
        out: &mut AppendFile,
        root: Option<NodePtr>,
        actions: &[Action],
    ) -> Result<Option<NodePtr>> {
        debug_assert!(
            actions.windows(2).all(|w| w[0].0 < w[1].0),
            "actions not sorted"
        );
        if actions.is_empty() {
            return Ok(root);
        }
        let mut level = match root {
            Some(root) => self.modify_node(out, root, actions, 0)?,
            None => {
                let entries = actions
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
                    .collect::<Vec<_>>();
                self.write_leaves(out, &entries)?
            }
        };
        while level.len() > 1 {
            level = self.write_interiors(out, level);
        }
        Ok(level.pop().map(|(_, ptr)| ptr))
    }

    fn modify_node(
        &self,
        out: &mut AppendFile,
        ptr: NodePtr,
        actions: &[Action],
        depth: usize,
    ) -> Result<Vec<(Vec<u8>, NodePtr)>> {
        check_depth(depth, ptr)?;
        // Decoded in place: a leaf's entries are merged and written as
        // slices of its bytes, with no copy of each key and value.
        let node = read_node_view(&*out, ptr)?;
        if node.leaf {
            return self.write_leaves(out, &merge_view(&node, actions));
        }
        let children = node.into_interior();
        let mut rebuilt = Vec::with_capacity(children.len() + 1);
        let mut rest = actions;
        let last_index = children.len() - 1;
        for (i, (last, child)) in children.into_iter().enumerate() {
            let take = if i == last_index {
                rest.len()
            } else {
                rest.partition_point(|(k, _)| k.as_slice() <= last.as_slice())
            };
            let (mine, tail) = rest.split_at(take);
            rest = tail;
            if mine.is_empty() {
                rebuilt.push((last, child));
            } else {
                rebuilt.extend(self.modify_node(out, child, mine, depth + 1)?);
            }
        }
        if rebuilt.is_empty() {
            return Ok(rebuilt);
        }
        Ok(self.write_interiors(out, rebuilt))
    }

    /// Walk the whole tree, checking key order, separator keys and reduces;
    /// calls `visit` for every entry in key order. Returns the root's reduce.
    pub fn verify(
        &self,
        src: &dyn ChunkSource,
        root: Option<NodePtr>,
        visit: &mut Visit<'_, ()>,
    ) -> Result<Reduce> {
        let Some(root) = root else {
            return Ok(Reduce::default());
        };
        let mut prev: Option<Vec<u8>> = None;
        let mut last = Vec::new();
        let reduce = self.verify_node(src, root, &mut prev, &mut last, visit, 0)?;
        check_root(root, reduce)
    }

    /// A leaf's own checks, in the walk's order: each key above the one
    /// before it, each entry visited, then (after every visit, as errors
    /// were always ordered) the reduces summed. Leaves its last key in
    /// `prev` and `last`.
    fn verify_leaf(
        &self,
        node: &NodeView,
        ptr: NodePtr,
        prev: &mut Option<Vec<u8>>,
        last: &mut Vec<u8>,
        visit: &mut Visit<'_, ()>,
    ) -> Result<Reduce> {
        for i in 0..node.entries.len() {
            let (k, v) = (node.key(i), node.value(i));
            if prev.as_ref().is_some_and(|p| p.as_slice() >= k) {
                return Err(Error::Verify(format!(
                    "keys out of order in leaf at {}",
                    ptr.pos
                )));
            }
            let p = prev.get_or_insert_with(Vec::new);
            p.clear();
            p.extend_from_slice(k);
            visit(k, v)?;
        }
        let mut sum = Reduce::default();
        for i in 0..node.entries.len() {
            sum = sum + (self.leaf_reduce)(node.key(i), node.value(i))?;
        }
        last.clear();
        last.extend_from_slice(node.key(node.entries.len() - 1));
        Ok(sum)
    }

    /// Verify the subtree at `ptr`; its last key is left in `last`.
    fn verify_node(
        &self,
        src: &dyn ChunkSource,
        ptr: NodePtr,
        prev: &mut Option<Vec<u8>>,
        last: &mut Vec<u8>,
        visit: &mut Visit<'_, ()>,
        depth: usize,
    ) -> Result<Reduce> {
        check_depth(depth, ptr)?;
        let node = read_node_view(src, ptr)?;
        if node.leaf {
            return self.verify_leaf(&node, ptr, prev, last, visit);
        }
        let mut sum = Reduce::default();
        for (i, child) in node.children.iter().enumerate() {
            let reduce = self.verify_node(src, *child, prev, last, visit, depth + 1)?;
            check_child(*child, reduce, last, node.key(i))?;
            sum = sum + reduce;
        }
        Ok(sum)
    }
}

/// A subtree that [`Tree::verify_memo`] walked without error: its reduce,
/// its height, its first and last keys and its entries (leaves decoded in
/// place), and the raw offset every byte it read lies below. Everything the
/// walk checked inside it is a function of those bytes; only the order of
/// its first key against the key before it, the depth it sits at and what
/// the visitor does depend on where it is met, and a memo hit checks or
/// replays exactly those.
#[derive(Debug)]
pub(crate) struct Verified {
    end: u64,
    reduce: Reduce,
    height: usize,
    first_leaf: u64,
    body: VerifiedBody,
}

#[derive(Debug)]
enum VerifiedBody {
    Leaf(NodeView),
    Interior(Vec<Arc<Verified>>),
}

impl Verified {
    fn first_key(&self) -> &[u8] {
        match &self.body {
            VerifiedBody::Leaf(node) => node.key(0),
            VerifiedBody::Interior(kids) => kids[0].first_key(),
        }
    }

    fn last_key(&self) -> &[u8] {
        match &self.body {
            VerifiedBody::Leaf(node) => node.key(node.entries.len() - 1),
            VerifiedBody::Interior(kids) => kids[kids.len() - 1].last_key(),
        }
    }

    /// Visit every entry in key order, as the walk did.
    fn replay(&self, visit: &mut Visit<'_, ()>) -> Result<()> {
        match &self.body {
            VerifiedBody::Leaf(node) => {
                for i in 0..node.entries.len() {
                    visit(node.key(i), node.value(i))?;
                }
            }
            VerifiedBody::Interior(kids) => {
                for kid in kids {
                    kid.replay(visit)?;
                }
            }
        }
        Ok(())
    }
}

/// Subtrees walked without error, by tree and root position (the subtree
/// half of a [`crate::memo::ChunkMemo`]).
#[derive(Debug, Default)]
pub(crate) struct Subtrees {
    map: HashMap<(TreeTag, u64), Arc<Verified>, BuildHasherDefault<PositionHasher>>,
    /// Subtrees whose walk was served from memory.
    pub(crate) hits: u64,
}

impl Subtrees {
    /// Forget every subtree that read bytes at `offset` or past it.
    pub(crate) fn forget_from(&mut self, offset: u64) {
        self.map.retain(|_, subtree| subtree.end <= offset);
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }
}

/// Which tree a memoized subtree belongs to (the same bytes walked as
/// another tree would sum other reduces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TreeTag {
    ById,
    BySeq,
    Local,
}

impl Tree {
    /// [`Tree::verify`] through a [`crate::memo::ChunkMemo`]: a subtree
    /// already walked without error in bytes still unchanged is not walked
    /// again, only checked against its context and its entries replayed to
    /// `visit`. Same result, same first error, as `verify`.
    pub(crate) fn verify_memo(
        &self,
        src: &dyn ChunkSource,
        subtrees: &RefCell<&mut Subtrees>,
        tag: TreeTag,
        root: Option<NodePtr>,
        visit: &mut Visit<'_, ()>,
    ) -> Result<Reduce> {
        let Some(root) = root else {
            return Ok(Reduce::default());
        };
        let mut prev: Option<Vec<u8>> = None;
        let mut last = Vec::new();
        let (reduce, _) =
            self.verify_node_memo(src, subtrees, tag, root, &mut prev, &mut last, visit, 0)?;
        check_root(root, reduce)
    }

    #[allow(clippy::too_many_arguments)]
    fn verify_node_memo(
        &self,
        src: &dyn ChunkSource,
        subtrees: &RefCell<&mut Subtrees>,
        tag: TreeTag,
        ptr: NodePtr,
        prev: &mut Option<Vec<u8>>,
        last: &mut Vec<u8>,
        visit: &mut Visit<'_, ()>,
        depth: usize,
    ) -> Result<(Reduce, Arc<Verified>)> {
        let known = subtrees.borrow().map.get(&(tag, ptr.pos)).cloned();
        if let Some(known) = known {
            // Deeper than allowed from here: walk it, for the same error.
            if depth + known.height <= MAX_DEPTH {
                subtrees.borrow_mut().hits += 1;
                if prev
                    .as_ref()
                    .is_some_and(|p| p.as_slice() >= known.first_key())
                {
                    return Err(Error::Verify(format!(
                        "keys out of order in leaf at {}",
                        known.first_leaf
                    )));
                }
                known.replay(visit)?;
                let p = prev.get_or_insert_with(Vec::new);
                p.clear();
                p.extend_from_slice(known.last_key());
                last.clear();
                last.extend_from_slice(known.last_key());
                return Ok((known.reduce, known));
            }
        }
        check_depth(depth, ptr)?;
        let node = read_node_view(src, ptr)?;
        let end = crate::format::chunk_end(ptr.pos, node.bytes.len() as u64)?;
        if node.leaf {
            let sum = self.verify_leaf(&node, ptr, prev, last, visit)?;
            let verified = Arc::new(Verified {
                end,
                reduce: sum,
                height: 0,
                first_leaf: ptr.pos,
                body: VerifiedBody::Leaf(node),
            });
            subtrees
                .borrow_mut()
                .map
                .insert((tag, ptr.pos), verified.clone());
            return Ok((sum, verified));
        }
        let mut sum = Reduce::default();
        let mut kids = Vec::with_capacity(node.children.len());
        for (i, child) in node.children.iter().enumerate() {
            let (reduce, kid) =
                self.verify_node_memo(src, subtrees, tag, *child, prev, last, visit, depth + 1)?;
            check_child(*child, reduce, last, node.key(i))?;
            sum = sum + reduce;
            kids.push(kid);
        }
        let verified = Arc::new(Verified {
            end: kids.iter().map(|k| k.end).fold(end, u64::max),
            reduce: sum,
            height: 1 + kids.iter().map(|k| k.height).max().unwrap_or(0),
            first_leaf: kids[0].first_leaf,
            body: VerifiedBody::Interior(kids),
        });
        subtrees
            .borrow_mut()
            .map
            .insert((tag, ptr.pos), verified.clone());
        Ok((sum, verified))
    }
}

/// [`merge`] over a leaf decoded in place: the same entries, borrowed from
/// the leaf's bytes and from the actions.
fn merge_view<'a>(node: &'a NodeView, actions: &'a [Action]) -> Vec<(&'a [u8], &'a [u8])> {
    let count = node.entries.len();
    let mut out = Vec::with_capacity(count + actions.len());
    let mut i = 0;
    let mut actions = actions.iter().peekable();
    loop {
        let order = match (i < count, actions.peek()) {
            (false, None) => break,
            (true, None) => Ordering::Less,
            (false, Some(_)) => Ordering::Greater,
            (true, Some((a, _))) => node.key(i).cmp(a.as_slice()),
        };
        match order {
            Ordering::Less => {
                out.push((node.key(i), node.value(i)));
                i += 1;
            }
            Ordering::Greater | Ordering::Equal => {
                if order == Ordering::Equal {
                    i += 1;
                }
                if let Some((k, Some(v))) = actions.next() {
                    out.push((k.as_slice(), v.as_slice()));
                }
            }
        }
    }
    out
}

/// Read and decode the node at `ptr` without walking below it: how recovery
/// checks that a header's roots are really there.
pub fn check_node(src: &dyn ChunkSource, ptr: NodePtr) -> Result<()> {
    read_node(src, ptr).map(|_| ())
}
