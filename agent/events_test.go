package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// User events through the agent's HTTP API and its gossip pool: the pool's
// refusals are the API's 400 and 413 with nothing fired, and the agent's
// own services are what a service filter is matched against.
func TestUserEventsThroughTheAgent(t *testing.T) {
	t.Parallel()
	c := newAgentConf(t, "s1")
	startAgent(t, c)
	mustCall(t, http.MethodPut, c.HTTP, "/v1/agent/service/register",
		`{"ID":"web-1","Name":"web","Tags":["v2"],"Port":80}`)

	for _, tc := range []struct {
		path, body string
		code       int
		msg        string
	}{
		{"/v1/event/fire/x?node=(", "", 400, "invalid node filter"},
		{"/v1/event/fire/x?tag=v2", "", 400, "a tag filter needs a service filter"},
		{"/v1/event/fire/_rexec", "", 400, "reserved"},
		{"/v1/event/fire/" + strings.Repeat("n", 100), strings.Repeat("p", 400), 413, "gossip carries at most 512"},
	} {
		code, body, err := call(http.MethodPut, c.HTTP, tc.path, tc.body)
		if err != nil || code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("PUT %.40s: %d %q, %v; want %d containing %q", tc.path, code, body, err, tc.code, tc.msg)
		}
	}
	var fired struct{ ID string }
	for _, path := range []string{"/v1/event/fire/web-v2?service=web&tag=v2", "/v1/event/fire/web-v1?service=web&tag=v1",
		"/v1/event/fire/not-me?node=s2", "/v1/event/fire/last"} {
		if err := json.Unmarshal([]byte(mustCall(t, http.MethodPut, c.HTTP, path, "")), &fired); err != nil || len(fired.ID) != 36 {
			t.Fatalf("PUT %s answered ID %q, %v", path, fired.ID, err)
		}
	}
	var names []string
	eventually(t, 10*time.Second, func() error {
		var evs []struct{ ID, Name string }
		if err := json.Unmarshal([]byte(mustCall(t, http.MethodGet, c.HTTP, "/v1/event/list", "")), &evs); err != nil {
			return err
		}
		names = names[:0]
		for _, e := range evs {
			names = append(names, e.Name)
		}
		if len(evs) == 0 || evs[len(evs)-1].ID != fired.ID {
			return fmt.Errorf("the last event is not listed yet: %v", names)
		}
		return nil
	})
	if !slices.Equal(names, []string{"web-v2", "last"}) {
		t.Errorf("kept %v, want [web-v2 last]", names)
	}
}
