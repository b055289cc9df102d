package discovery

import (
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// TestSetupErrors covers the inputs that fail before the agent is acquired:
// a valid block would start a real agent, which the end-to-end tests do.
func TestSetupErrors(t *testing.T) {
	tests := []struct {
		input string
		want  string // substring of the error
	}{
		{"discovery {\n    bogus 1\n}", `Testfile:2 - Error during parsing: discovery: property "bogus": unknown property`},
		{"discovery {\n    node_ttl\n}", `property "node_ttl": missing value`},
		{"discovery {\n    node_ttl forever\n}", `property "node_ttl"`},
		{"discovery {\n    a_record_limit -1\n}", `property "a_record_limit"`},
		{"discovery {\n    datacenter dc.1\n}", `property "datacenter"`},
		{"discovery {\n    only_passing yes\n}", `property "only_passing"`},
		{"discovery {\n    bootstrap_expect 3\n}", `property "bootstrap_expect"`},
		{"discovery\ndiscovery", "only one discovery block"},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			c := caddy.NewTestController("dns", tt.input)
			err := setup(c)
			if err == nil {
				t.Fatal("setup succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "plugin/discovery: ") {
				t.Errorf("error %q does not name the plugin", err)
			}
		})
	}
}
