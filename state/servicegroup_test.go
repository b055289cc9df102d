package state

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// A service group through thousands of random additions, changes and
// removals (enough to split chunks and empty them): after each, the group
// holds exactly the model's instances, in order, in chunks that are
// neither empty nor over groupChunk; and the group it was made from is
// unchanged, as readers of older snapshots still hold it.
func TestServiceGroupChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	nodes := []string{"a", "B", "b", "node-7", "Node-7", "z\u00e9", "Z\u00c9", "\u212a"} // case variants of the same node included
	model := map[string]*Service{}                                                       // lowercased node "/" ID
	var g *serviceGroup
	for step := range 2500 {
		node := nodes[rng.IntN(len(nodes))]
		svc := &Service{Node: node, ID: fmt.Sprintf("i%d", rng.IntN(150)), Service: "web", Port: step}
		key := strings.ToLower(node) + "/" + svc.ID
		prev, before := g, snapshotGroup(g)
		var op string
		if g == nil || rng.IntN(3) > 0 {
			op = "with " + key
			g = g.with("web", svc)
			model[key] = svc
		} else {
			op = "without " + key
			g = g.without(svc)
			delete(model, key)
		}
		if !slices.Equal(snapshotGroup(prev), before) {
			t.Fatalf("step %d (%s) changed the group it was made from", step, op)
		}
		if len(model) == 0 && g != nil {
			t.Fatalf("step %d (%s): the last instance is gone but the group is not nil", step, op)
		}

		var want []*Service
		for _, s := range model {
			want = append(want, s)
		}
		slices.SortFunc(want, compareInstances)
		var got []*Service
		if g != nil {
			got = slices.Collect(g.all())
			for c, chunk := range g.chunks {
				if len(chunk) == 0 || len(chunk) > groupChunk {
					t.Fatalf("step %d (%s): chunk %d holds %d instances", step, op, c, len(chunk))
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d (%s): the group holds %d instances, want %d (or another order)", step, op, len(got), len(want))
		}
	}
}

// snapshotGroup is a copy of what g holds, to tell later whether g changed.
func snapshotGroup(g *serviceGroup) []*Service {
	if g == nil {
		return nil
	}
	return slices.Collect(g.all())
}

// with and without leave the group they are called on as it was.
func TestServiceGroupCopiesOnWrite(t *testing.T) {
	var g *serviceGroup
	for i := range 3 * groupChunk {
		g = g.with("web", &Service{Node: fmt.Sprintf("n%04d", i), ID: "web"})
	}
	held := snapshotGroup(g)
	chunks := len(g.chunks)
	changed := g.with("web", &Service{Node: "n0005", ID: "web", Port: 1})  // a change
	grown := g.with("web", &Service{Node: "n0383a", ID: "web"})            // an addition to the full last chunk, which splits
	shrunk := g.without(&Service{Node: "n0300", ID: "web"})                // a removal
	gone := (&serviceGroup{Name: "x"}).with("x", held[0]).without(held[0]) // the last one out
	if !slices.Equal(snapshotGroup(g), held) || len(g.chunks) != chunks {
		t.Fatal("writing a copy changed the group it was made from")
	}
	if changed.chunks[0][5].Port != 1 || len(snapshotGroup(grown)) != len(held)+1 || len(snapshotGroup(shrunk)) != len(held)-1 || gone != nil {
		t.Fatalf("the copies are not what was written: %d, %d, %d, %v", changed.chunks[0][5].Port, len(snapshotGroup(grown)), len(snapshotGroup(shrunk)), gone)
	}
	if len(g.chunks[len(g.chunks)-1]) != groupChunk || len(grown.chunks) != chunks+1 {
		t.Errorf("the last chunk holds %d, and adding to it made %d chunks of %d: no split", len(g.chunks[len(g.chunks)-1]), len(grown.chunks), chunks)
	}
	if same := g.without(&Service{Node: "absent", ID: "web"}); same != g {
		t.Error("removing an instance the group lacks made a copy")
	}
}

// compareFold orders as comparing the lowercased strings does, ASCII or
// not.
func TestCompareFold(t *testing.T) {
	words := []string{"", "a", "A", "ab", "aB", "b", "node-1", "NODE-1", "node-10", "z\u00e9", "Z\u00c9", "ze", "\u212a", "k", "K", "kz", "\u00e9a"}
	for _, a := range words {
		for _, b := range words {
			if got, want := compareFold(a, b), strings.Compare(strings.ToLower(a), strings.ToLower(b)); got != want {
				t.Errorf("compareFold(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}
