package e2e

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
)

func linOp(c int, in linInput, out linOutput, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: c, Input: in, Output: out, Call: call, Return: ret}
}

// TestLinearizabilityModel shows that the model of
// TestLinearizableKVUnderLeaderKills can fail: it rejects the histories
// that a broken store would produce and accepts the legal ones.
func TestLinearizabilityModel(t *testing.T) {
	k := "k"
	put := func(v string) linInput { return linInput{kind: linPut, key: k, value: v} }
	get := linInput{kind: linGet, key: k}
	cas := func(from string, i uint64, v string) linInput {
		return linInput{kind: linCAS, key: k, from: from, index: i, value: v}
	}
	inf := int64(math.MaxInt64)
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"stale read after ack", []porcupine.Operation{
			linOp(0, put("a"), linOutput{index: 5}, 0, 1),
			linOp(0, put("b"), linOutput{index: 6}, 2, 3),
			linOp(1, get, linOutput{found: true, value: "a", index: 5}, 4, 5),
		}, porcupine.Illegal},
		{"read ok", []porcupine.Operation{
			linOp(0, put("a"), linOutput{index: 5}, 0, 1),
			linOp(0, put("b"), linOutput{index: 6}, 2, 6),
			linOp(1, get, linOutput{found: true, value: "a", index: 5}, 4, 5),
		}, porcupine.Ok},
		{"absent after ack", []porcupine.Operation{
			linOp(0, put("a"), linOutput{}, 0, 1),
			linOp(1, get, linOutput{}, 2, 3),
		}, porcupine.Illegal},
		{"index decreasing", []porcupine.Operation{
			linOp(0, put("a"), linOutput{index: 7}, 0, 1),
			linOp(0, put("b"), linOutput{index: 6}, 2, 3),
		}, porcupine.Illegal},
		{"index changed without write", []porcupine.Operation{
			linOp(0, put("a"), linOutput{index: 7}, 0, 1),
			linOp(1, get, linOutput{found: true, value: "a", index: 8}, 2, 3),
		}, porcupine.Illegal},
		{"cas refused though it matched", []porcupine.Operation{
			linOp(0, put("a"), linOutput{}, 0, 1),
			linOp(1, get, linOutput{found: true, value: "a", index: 5}, 2, 3),
			linOp(1, cas("a", 5, "b"), linOutput{}, 4, 5),
			linOp(1, get, linOutput{found: true, value: "a", index: 5}, 6, 7),
		}, porcupine.Illegal},
		{"cas refused and applied (duplicate apply)", []porcupine.Operation{
			linOp(0, put("a"), linOutput{}, 0, 1),
			linOp(1, get, linOutput{found: true, value: "a", index: 5}, 2, 3),
			linOp(1, cas("a", 5, "b"), linOutput{}, 4, 5),
			linOp(1, get, linOutput{found: true, value: "b", index: 9}, 6, 7),
		}, porcupine.Illegal},
		{"cas ok, then concurrent put", []porcupine.Operation{
			linOp(0, put("a"), linOutput{}, 0, 1),
			linOp(1, get, linOutput{found: true, value: "a", index: 5}, 2, 3),
			linOp(1, cas("a", 5, "b"), linOutput{ok: true}, 4, 8),
			linOp(0, put("c"), linOutput{index: 7}, 4, 8),
			linOp(1, get, linOutput{found: true, value: "c", index: 7}, 10, 11),
		}, porcupine.Ok},
		{"unknown put seen later", []porcupine.Operation{
			linOp(0, put("a"), linOutput{index: 5}, 0, 1),
			linOp(0, put("x"), linOutput{unknown: true}, 2, inf),
			linOp(1, get, linOutput{found: true, value: "a", index: 5}, 3, 4),
			linOp(1, get, linOutput{found: true, value: "x", index: 9}, 5, 6),
			linOp(1, get, linOutput{found: true, value: "x", index: 9}, 7, 8),
		}, porcupine.Ok},
		{"unknown put never seen", []porcupine.Operation{
			linOp(0, put("a"), linOutput{index: 5}, 0, 1),
			linOp(0, put("x"), linOutput{unknown: true}, 2, inf),
			linOp(1, get, linOutput{found: true, value: "a", index: 5}, 3, 4),
			linOp(1, get, linOutput{found: true, value: "a", index: 5}, 50, 60),
		}, porcupine.Ok},
		{"unknown put seen then unseen", []porcupine.Operation{
			linOp(0, put("a"), linOutput{index: 5}, 0, 1),
			linOp(0, put("x"), linOutput{unknown: true}, 2, inf),
			linOp(1, get, linOutput{found: true, value: "x", index: 9}, 5, 6),
			linOp(1, get, linOutput{found: true, value: "a", index: 5}, 7, 8),
		}, porcupine.Illegal},
		{"unknown cas seen", []porcupine.Operation{
			linOp(0, put("a"), linOutput{index: 5}, 0, 1),
			linOp(1, cas("a", 5, "b"), linOutput{unknown: true}, 2, inf),
			linOp(1, get, linOutput{found: true, value: "b", index: 9}, 5, 6),
		}, porcupine.Ok},
		{"unknown cas that could not match seen", []porcupine.Operation{
			linOp(0, put("a"), linOutput{index: 5}, 0, 1),
			linOp(1, cas("z", 3, "b"), linOutput{unknown: true}, 2, inf),
			linOp(1, get, linOutput{found: true, value: "b", index: 9}, 5, 6),
		}, porcupine.Illegal},
	}
	m := linModel()
	for _, c := range cases {
		if ok := porcupine.CheckOperations(m, c.ops); ok != (c.want == porcupine.Ok) {
			t.Errorf("%s: linearizable=%v, want %v", c.name, ok, c.want == porcupine.Ok)
		}
	}
	if err := checkIndexesNameValues([]porcupine.Operation{
		linOp(0, put("a"), linOutput{index: 5}, 0, 1),
		linOp(1, get, linOutput{found: true, value: "b", index: 5}, 2, 3),
	}); err == nil {
		t.Error("the index check missed one ModifyIndex named with two values")
	}
}
