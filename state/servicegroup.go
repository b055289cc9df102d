package state

import (
	"cmp"
	"iter"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// groupChunk is the most instances one chunk of a group holds. A write
// copies one chunk and the list of chunks, so changing an instance of a
// service with 50,000 (or on a node with as many) costs a few kilobytes
// of copying, not 400.
const groupChunk = 128

// serviceGroup is every instance of one service name, or on one node
// (names compared without case), immutable once stored: writes make
// changed copies (with, without). The instances are in chunks, sorted by
// node (without case) then ID across the chunks.
type serviceGroup struct {
	Name   string // lowercased: the key
	chunks [][]*Service
}

// newServiceGroup makes the group of instances, which must be sorted by
// compareInstances, in full chunks.
func newServiceGroup(name string, instances []*Service) *serviceGroup {
	g := &serviceGroup{Name: name}
	for len(instances) > 0 {
		n := min(groupChunk, len(instances))
		g.chunks = append(g.chunks, slices.Clone(instances[:n]))
		instances = instances[n:]
	}
	return g
}

// all iterates the instances in order.
func (g *serviceGroup) all() iter.Seq[*Service] {
	return func(yield func(*Service) bool) {
		for _, chunk := range g.chunks {
			for _, svc := range chunk {
				if !yield(svc) {
					return
				}
			}
		}
	}
}

// find returns where the instance with svc's node and ID is, or would go:
// a chunk and a position in it.
func (g *serviceGroup) find(svc *Service) (chunk, pos int, found bool) {
	if len(g.chunks) == 0 {
		return 0, 0, false
	}
	chunk = sort.Search(len(g.chunks), func(c int) bool {
		last := g.chunks[c][len(g.chunks[c])-1]
		return compareInstances(last, svc) >= 0
	})
	if chunk == len(g.chunks) {
		chunk-- // after every instance: at the end of the last chunk
	}
	ch := g.chunks[chunk]
	pos = sort.Search(len(ch), func(i int) bool { return compareInstances(ch[i], svc) >= 0 })
	return chunk, pos, pos < len(ch) && compareInstances(ch[pos], svc) == 0
}

// with returns a copy of g (nil: an empty group named name) holding svc in
// place of the instance with its node and ID, or added.
func (g *serviceGroup) with(name string, svc *Service) *serviceGroup {
	if g == nil || len(g.chunks) == 0 {
		return &serviceGroup{Name: name, chunks: [][]*Service{{svc}}}
	}
	c, pos, found := g.find(svc)
	out := &serviceGroup{Name: g.Name, chunks: slices.Clone(g.chunks)}
	if found {
		chunk := slices.Clone(g.chunks[c])
		chunk[pos] = svc
		out.chunks[c] = chunk
		return out
	}
	// A new chunk of exactly the new length: every write copies the chunk
	// anyway, so room to grow would only be memory held for nothing.
	old := g.chunks[c]
	chunk := make([]*Service, len(old)+1)
	copy(chunk, old[:pos])
	chunk[pos] = svc
	copy(chunk[pos+1:], old[pos:])
	if len(chunk) <= groupChunk {
		out.chunks[c] = chunk
		return out
	}
	half := len(chunk) / 2
	out.chunks[c] = slices.Clone(chunk[:half])
	out.chunks = slices.Insert(out.chunks, c+1, slices.Clone(chunk[half:]))
	return out
}

// without returns a copy of g without the instance with old's node and
// ID; nil when nothing is left.
func (g *serviceGroup) without(old *Service) *serviceGroup {
	c, pos, found := g.find(old)
	if !found {
		return g
	}
	out := &serviceGroup{Name: g.Name, chunks: slices.Clone(g.chunks)}
	if len(g.chunks[c]) == 1 {
		out.chunks = slices.Delete(out.chunks, c, c+1)
		if len(out.chunks) == 0 {
			return nil
		}
		return out
	}
	out.chunks[c] = slices.Delete(slices.Clone(g.chunks[c]), pos, pos+1)
	return out
}

// compareInstances orders instances by node, without case (the catalog's
// node identity), then by ID.
func compareInstances(a, b *Service) int {
	if c := compareFold(a.Node, b.Node); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// compareFold compares strings.ToLower(a) with strings.ToLower(b) without
// making them when both are ASCII.
func compareFold(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if x >= utf8.RuneSelf || y >= utf8.RuneSelf {
			return strings.Compare(strings.ToLower(a), strings.ToLower(b))
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return cmp.Compare(x, y)
		}
	}
	return cmp.Compare(len(a), len(b))
}
