package bolt

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"

	"github.com/zkpaas/paas"
)

// bucketRule is what a bucket of the file may hold.
type bucketRule int

const (
	rootBucket       bucketRule = iota // the store's buckets, and nothing else
	tasksBucket                        // values only, under task ids
	indexBucket                        // values only, under Seqs
	proofsBucket                       // values only, under task ids
	dependentsBucket                   // empty values only, under two task ids
)

// storeBuckets are the rules of the store's buckets, by name.
var storeBuckets = map[string]bucketRule{
	string(bucketTasks):  tasksBucket,
	string(bucketIndex):  indexBucket,
	string(bucketProofs): proofsBucket,
	// Files written before it existed lack it; Open adds it.
	string(bucketDependents): dependentsBucket,
}

// requiredBuckets is how many of storeBuckets every store file has: all but dependents.
const requiredBuckets = 3

func (r bucketRule) String() string {
	switch r {
	case tasksBucket:
		return string(bucketTasks)
	case indexBucket:
		return string(bucketIndex)
	case proofsBucket:
		return string(bucketProofs)
	case dependentsBucket:
		return string(bucketDependents)
	}
	return "root"
}

// walk checks the subtree of page id, whose keys must lie in [lo, hi) (no bound if nil).
func (s *structure) walk(id uint64, lo, hi []byte, rule bucketRule, what string) {
	p, ok := s.read(id, branchPage|leafPage, what)
	if !ok {
		return
	}
	s.walkPage(p, lo, hi, rule, what)
	s.release(p)
}

// element reads element i of p: its flags (of a leaf element), key and the size of its value
// (of a leaf element) or child page (of a branch element), and the offset of its value.
func (s *structure) element(p *page, i uint64) (flags uint32, key []byte, valOff, vsize, child uint64, err error) {
	at := pageHeaderSize + i*elementSize
	e, err := p.bytes(at, elementSize)
	if err != nil {
		return 0, nil, 0, 0, 0, err
	}
	pos, ksize := uint64(native.Uint32(e[4:])), uint64(native.Uint32(e[8:]))
	if p.flags == branchPage {
		pos, ksize, child = uint64(native.Uint32(e[0:])), uint64(native.Uint32(e[4:])), native.Uint64(e[8:])
	} else {
		flags, vsize = native.Uint32(e[0:]), uint64(native.Uint32(e[12:]))
	}
	if _, err := p.bytes(at+pos, ksize+vsize); err != nil {
		return 0, nil, 0, 0, 0, err
	}
	key, err = p.bytes(at+pos, ksize)
	return flags, key, at + pos + ksize, vsize, child, err
}

func (s *structure) walkPage(p *page, lo, hi []byte, rule bucketRule, what string) {
	if p.flags == branchPage && p.count == 0 {
		s.problem("%s: branch page %d without elements", what, p.id)
		return
	}
	if pageHeaderSize+p.count*elementSize > p.span {
		s.problem("%s: page %d: %d elements do not fit", what, p.id, p.count)
		return
	}
	type child struct {
		id     uint64
		lo, hi []byte
	}
	var children []child
	prev := lo
	for i := range p.count {
		flags, key, valOff, vsize, childID, err := s.element(p, i)
		if err != nil {
			s.problem("%s: page %d, element %d: %v", what, p.id, i, err)
			return
		}
		switch {
		case prev != nil && (bytes.Compare(key, prev) < 0 || (i > 0 && bytes.Equal(key, prev))):
			s.problem("%s: page %d, element %d: key %x out of order after %x", what, p.id, i, key, prev)
			return
		case hi != nil && bytes.Compare(key, hi) >= 0:
			s.problem("%s: page %d, element %d: key %x not below %x, the next key of its parent", what, p.id, i, key, hi)
			return
		}
		prev = key // in p, which outlives the loop; but the bounds of children must be copies
		if p.flags == branchPage {
			prev = bytes.Clone(key)
			if n := len(children); n > 0 {
				children[n-1].hi = prev
			}
			children = append(children, child{id: childID, lo: prev, hi: hi})
			continue
		}
		val, err := p.bytes(valOff, vsize)
		if err != nil {
			s.problem("%s: page %d, element %d: value %v", what, p.id, i, err)
			return
		}
		s.leafElement(p, i, flags, prev, val, rule, what)
	}
	for _, c := range children {
		s.walk(c.id, c.lo, c.hi, rule, what)
	}
}

// leafElement checks element i of leaf page p, key → val, and collects what the store's
// checks need of it.
func (s *structure) leafElement(p *page, i uint64, flags uint32, key, val []byte, rule bucketRule, what string) {
	if rule != rootBucket {
		if flags != 0 {
			s.problem("%s bucket: page %d, element %d: flags %#x on a value", what, p.id, i, flags)
			return
		}
		switch rule {
		case tasksBucket:
			if !recordNames(key, val) {
				s.suspects = append(s.suspects, bytes.Clone(key))
			}
		case indexBucket:
			if len(val) >= 2+len(paas.TaskID{}) { // else the store reports the entry damaged
				s.indexIDs = append(s.indexIDs, paas.TaskID(val[2:]))
			}
		case proofsBucket:
			s.proofDigest ^= proofKeyHash(key)
		case dependentsBucket:
			if len(key) != 2*len(paas.TaskID{}) || len(val) != 0 {
				s.problem("%s bucket: page %d, element %d: a key of %d bytes with %d bytes of value, not two task ids alone",
					what, p.id, i, len(key), len(val))
			}
		}
		return
	}
	child, ok := storeBuckets[string(key)]
	switch {
	case !ok:
		s.problem("root bucket: page %d, element %d: %q is not a bucket of the store", p.id, i, key)
		return
	case flags != bucketElement:
		s.problem("root bucket: page %d, element %d: the %s bucket is flagged %#x, not as a bucket", p.id, i, key, flags)
		return
	case len(val) < bucketHeaderSize:
		s.problem("root bucket: the %s bucket's header cut short", key)
		return
	}
	if child != dependentsBucket {
		s.buckets++
	}
	root, seq := native.Uint64(val), native.Uint64(val[8:])
	if child == proofsBucket {
		s.proofSeq = seq
	}
	if root != 0 {
		if len(val) != bucketHeaderSize {
			s.problem("root bucket: the %s bucket has both a root page and an inline page", key)
			return
		}
		s.walk(root, nil, nil, child, child.String())
		return
	}
	inline := val[bucketHeaderSize:]
	if len(inline) < pageHeaderSize {
		s.problem("root bucket: the %s bucket's inline page cut short", key)
		return
	}
	ip := &page{flags: uint64(native.Uint16(inline[8:])), count: uint64(native.Uint16(inline[10:])), buf: inline, span: uint64(len(inline))}
	if ip.flags != leafPage {
		s.problem("root bucket: the %s bucket's inline page of type %#x, not a leaf", key, ip.flags)
		return
	}
	s.walkPage(ip, nil, nil, child, child.String()+" (inline)")
}

// recordNames reports whether val, stored under key in the tasks bucket, passes its checksum
// and holds the task id key: in every format version, the id follows the version byte.
func recordNames(key, val []byte) bool {
	const idEnd = 1 + len(paas.TaskID{})
	if len(val) < idEnd+crcLen || !bytes.Equal(val[1:idEnd], key) {
		return false
	}
	end := len(val) - crcLen
	return binary.BigEndian.Uint32(val[end:]) == crc32.Checksum(val[:end], castagnoli)
}
