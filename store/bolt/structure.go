package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"

	"github.com/zkpaas/paas"
)

// The layout of a bbolt file, as go.etcd.io/bbolt v1 writes it (internal/common): pages of
// the size its meta pages give, in the byte order of the machine.
//
//	page header   id uint64, flags uint16, count uint16, overflow uint32: 16 bytes, then
//	branch        count elements of pos uint32, ksize uint32, child uint64; the key at the
//	              element's own offset plus pos
//	leaf          count elements of flags uint32, pos uint32, ksize uint32, vsize uint32; the
//	              key at the element's offset plus pos, the value after it
//	freelist      count page ids uint64, or, if count is 0xFFFF, the count as the first of them
//	meta          magic, version, page size, flags uint32; the root bucket (root page uint64,
//	              sequence uint64); freelist, high water mark, txid uint64; then an FNV-64a of
//	              all that
//
// A leaf element flagged bucketElement is a bucket: its value begins with the bucket's root
// page and sequence, and if the root is 0 the bucket's one leaf page follows, inline.
const (
	pageHeaderSize   = 16
	elementSize      = 16
	bucketHeaderSize = 16
	metaOffset       = pageHeaderSize
	metaSumLen       = 56 // the meta fields that its checksum covers

	branchPage   = 0x01
	leafPage     = 0x02
	freelistPage = 0x10

	bucketElement = 0x01

	boltMagic   = 0xED0CDAED
	boltVersion = 2
	noFreelist  = ^uint64(0)
)

var native = binary.NativeEndian

// meta is a meta page, decoded.
type meta struct {
	pageSize       uint64
	root, rootSeq  uint64
	freelist, hwm  uint64
	txid           uint64
	valid          bool
	invalidBecause string
}

func decodeMeta(b []byte) meta {
	if len(b) < metaOffset+metaSumLen+8 {
		return meta{invalidBecause: "cut short"}
	}
	m := b[metaOffset:]
	h := fnv.New64a()
	h.Write(m[:metaSumLen])
	switch {
	case native.Uint32(m[0:]) != boltMagic:
		return meta{invalidBecause: "no bbolt magic number"}
	case native.Uint32(m[4:]) != boltVersion:
		return meta{invalidBecause: fmt.Sprintf("bbolt format version %d, not %d", native.Uint32(m[4:]), boltVersion)}
	case native.Uint64(m[metaSumLen:]) != h.Sum64():
		return meta{invalidBecause: "checksum mismatch"}
	}
	return meta{
		pageSize: uint64(native.Uint32(m[8:])),
		root:     native.Uint64(m[16:]), rootSeq: native.Uint64(m[24:]),
		freelist: native.Uint64(m[32:]), hwm: native.Uint64(m[40:]), txid: native.Uint64(m[48:]),
		valid: true,
	}
}

// page states in structure.seen
const (
	unseen byte = iota
	inUse
	free
)

// structure checks the bbolt structure of a file by reading it with plain reads, never a
// memory map: whatever the damage, a read past the end of the file is an error, not a fault,
// and a page id out of range is reported, not followed. It checks what bbolt's own
// tx.Check does (every page reachable from the newest meta page once and only once, or free,
// never both; keys in order within each page and between a branch and its children) and
// what bbolt trusts without checking (meta pages, the file long enough for its pages, page
// types and element bounds), since bbolt's Check reads the memory map and itself crashes on
// such damage. It also collects what the store checks once bbolt may read the file: the
// keys of the tasks and the ids of the index, and the digest of the proofs' keys.
type structure struct {
	f        *os.File
	pageSize uint64
	hwm      uint64
	txid     uint64
	seen     []byte

	problems []error
	unlisted int

	bufs [][]byte // buffers of pages checked, to reuse

	// Collected for the store's checks, complete only if there are no problems.
	suspects    [][]byte      // keys of the tasks bucket whose value does not read as that task's record
	indexIDs    []paas.TaskID // in the order of the index; strays looks them up only if there are suspects
	proofDigest uint64        // of the keys of the proofs bucket, see proofKeyHash
	proofSeq    uint64        // the sequence of the proofs bucket
	buckets     int           // of the store's, found in the root bucket
}

// checkStructure checks the file at path, which exists and is not empty. It returns the
// problems found, up to MaxListedProblems, in s.problems; an error only if it could not read
// the file.
func checkStructure(path string) (*structure, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	s := &structure{f: f}
	m, ok := s.metas(info.Size())
	if !ok {
		return s, nil
	}
	s.pageSize, s.hwm, s.txid = m.pageSize, m.hwm, m.txid
	switch {
	case m.hwm < 2 || m.root < 2 || m.root >= m.hwm:
		s.problem("meta page: root page %d outside the %d pages", m.root, m.hwm)
		return s, nil
	case uint64(info.Size())/m.pageSize < m.hwm:
		s.problem("file of %d bytes cut short: it must hold %d pages of %d bytes", info.Size(), m.hwm, m.pageSize)
		return s, nil
	}
	s.seen = make([]byte, m.hwm)
	s.seen[0], s.seen[1] = inUse, inUse
	if m.freelist != noFreelist {
		s.freelist(m.freelist)
	}
	s.walk(m.root, nil, nil, rootBucket, "root bucket")
	if s.buckets != 0 && s.buckets != requiredBuckets {
		s.problem("root bucket: %d of the store's %d buckets", s.buckets, requiredBuckets)
	}
	if s.buckets != 0 && s.proofSeq != 0 && s.proofSeq != trackedDigest|s.proofDigest {
		s.problem("proofs bucket: its keys are not those stored (digest %#x, expected %#x): a key is damaged", trackedDigest|s.proofDigest, s.proofSeq)
	}
	if m.freelist != noFreelist && len(s.problems) == 0 {
		for id, st := range s.seen {
			if st == unseen {
				s.problem("page %d neither in use nor free", id)
			}
		}
	}
	return s, nil
}

func (s *structure) problem(format string, args ...any) {
	if len(s.problems) < MaxListedProblems {
		s.problems = append(s.problems, fmt.Errorf(format, args...))
	} else {
		s.unlisted++
	}
}

// metas reads both meta pages and returns the one bbolt uses, the valid one of the greater
// txid. Either being invalid is a problem: a healthy file always has two. A crash in the
// middle of a commit can leave the one it was writing invalid; the file then holds the state
// of the commit before, which bbolt would use silently.
func (s *structure) metas(size int64) (meta, bool) {
	first := make([]byte, 4096)
	n, _ := s.f.ReadAt(first, 0)
	m0 := decodeMeta(first[:n])
	pageSize := m0.pageSize
	if !m0.valid {
		pageSize = 4096 // the usual; bbolt tries the others too
	}
	second := make([]byte, 4096)
	n, _ = s.f.ReadAt(second, int64(pageSize))
	m1 := decodeMeta(second[:n])
	for i, m := range []meta{m0, m1} {
		if !m.valid {
			s.problem("meta page %d invalid (%s): a crash in the middle of a commit or damage; bbolt would use the other one and so lose the last commit", i, m.invalidBecause)
		}
	}
	if m0.valid && m1.valid && m0.pageSize != m1.pageSize {
		s.problem("meta pages disagree on the page size: %d and %d", m0.pageSize, m1.pageSize)
	}
	m := m0
	if !m0.valid || (m1.valid && m1.txid > m0.txid) {
		m = m1
	}
	switch {
	case !m.valid:
		if size < 2*1024 {
			s.problem("file of %d bytes cut short: too small for the two meta pages", size)
		}
		return m, false
	case m.pageSize < 1024 || m.pageSize > 1<<24 || m.pageSize&(m.pageSize-1) != 0:
		s.problem("meta page: impossible page size %d", m.pageSize)
		return m, false
	}
	return m, true
}

// page is a page of the file with its overflow pages, or an inline page; its bytes beyond the
// first page are read on demand, so that a leaf of large values costs the reads of its keys.
type page struct {
	id, flags, count uint64
	buf              []byte // the first page, or all of an inline page
	span             uint64 // bytes of the page and its overflow pages
	off              int64  // offset in the file
	f                *os.File
}

var errOutOfPage = errors.New("beyond the end of its page")

func (p *page) bytes(at, n uint64) ([]byte, error) {
	if at > p.span || n > p.span-at {
		return nil, errOutOfPage
	}
	if at+n <= uint64(len(p.buf)) {
		return p.buf[at : at+n], nil
	}
	b := make([]byte, n)
	if _, err := p.f.ReadAt(b, p.off+int64(at)); err != nil {
		return nil, err
	}
	return b, nil
}

// read reads page id, which must be in range, unseen, and of one of the types in flags, and
// marks it and its overflow pages in use. what names it in problems.
func (s *structure) read(id uint64, flags uint16, what string) (*page, bool) {
	if id < 2 || id >= s.hwm {
		s.problem("%s: page %d outside the %d pages", what, id, s.hwm)
		return nil, false
	}
	buf, err := s.readPage(id)
	if err != nil {
		s.problem("%s: page %d: %v", what, id, err)
		return nil, false
	}
	p := &page{
		id: native.Uint64(buf), flags: uint64(native.Uint16(buf[8:])), count: uint64(native.Uint16(buf[10:])),
		buf: buf, off: int64(id * s.pageSize), f: s.f,
	}
	overflow := uint64(native.Uint32(buf[12:]))
	switch {
	case p.id != id:
		s.problem("%s: page %d holds the header of page %d", what, id, p.id)
		return nil, false
	case uint16(p.flags)&flags == 0 || p.flags&(p.flags-1) != 0:
		s.problem("%s: page %d of type %#x, not %#x", what, id, p.flags, flags)
		return nil, false
	case overflow >= s.hwm-id:
		s.problem("%s: page %d overflows past the %d pages", what, id, s.hwm)
		return nil, false
	}
	for i := id; i <= id+overflow; i++ {
		switch s.seen[i] {
		case inUse:
			s.problem("%s: page %d used twice", what, i)
			return nil, false
		case free:
			s.problem("%s: page %d in use and in the free list", what, i)
			return nil, false
		}
		s.seen[i] = inUse
	}
	p.span = (overflow + 1) * s.pageSize
	return p, true
}

// readPage returns a copy of page id, without its overflow pages, in a buffer to give back
// with release once done with it. (Reading ahead in chunks of pages made the check slower:
// a bucket that updates rewrite has its pages all over the file.)
func (s *structure) readPage(id uint64) ([]byte, error) {
	var buf []byte
	if n := len(s.bufs); n > 0 {
		buf, s.bufs = s.bufs[n-1], s.bufs[:n-1]
	} else {
		buf = make([]byte, s.pageSize)
	}
	if _, err := s.f.ReadAt(buf, int64(id*s.pageSize)); err != nil {
		return nil, err
	}
	return buf, nil
}

// release gives back the buffer of a page read by read.
func (s *structure) release(p *page) {
	if p.f != nil {
		s.bufs = append(s.bufs, p.buf)
	}
}

func (s *structure) freelist(id uint64) {
	p, ok := s.read(id, freelistPage, "free list")
	if !ok {
		return
	}
	defer s.release(p)
	start, count := uint64(pageHeaderSize), p.count
	if count == 0xFFFF {
		b, err := p.bytes(start, 8)
		if err != nil {
			s.problem("free list: page %d: count %v", id, err)
			return
		}
		start, count = start+8, native.Uint64(b)
	}
	if count > p.span/8 {
		s.problem("free list: page %d: %d ids do not fit", id, count)
		return
	}
	ids, err := p.bytes(start, count*8)
	if err != nil {
		s.problem("free list: page %d: %d ids %v", id, count, err)
		return
	}
	for i := range count {
		free_ := native.Uint64(ids[i*8:])
		switch {
		case free_ < 2 || free_ >= s.hwm:
			s.problem("free list: page %d outside the %d pages", free_, s.hwm)
		case s.seen[free_] != unseen:
			s.problem("free list: page %d listed twice, or in use", free_)
		default:
			s.seen[free_] = free
		}
	}
}
