package discovery

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"
)

// testDirectives are CoreDNS's with discovery, as main sets them.
func testDirectives() []string { return append([]string{pluginName}, dnsserver.Directives...) }

func writeCorefile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidateCorefile(t *testing.T) {
	dataDir := t.TempDir() // parsing creates nothing in it; it only has to be a path
	valid := []string{
		"consul:8600 dc1:8600 {\n    discovery {\n        node n1\n        data_dir " + dataDir + "\n        server\n" +
			"        bootstrap_expect 1\n    }\n    cache\n}\n.:8600 {\n    forward . 127.0.0.1\n}\n",
		// A second block naming no agent setting attaches to the first's agent.
		"consul:8600 {\n    discovery {\n        node n1\n    }\n}\nexample.:8600 {\n    discovery\n}\n",
		// The same agent settings in both blocks.
		"consul:8600 {\n    discovery {\n        node n1\n    }\n}\ndc1:8600 {\n    discovery {\n        node n1\n    }\n}\n",
		// No discovery at all: a plain CoreDNS.
		".:8600 {\n    whoami\n}\n",
	}
	for _, body := range valid {
		if err := validateCorefile(writeCorefile(t, body), testDirectives()); err != nil {
			t.Errorf("valid Corefile refused: %v\n%s", err, body)
		}
	}

	for _, tc := range []struct {
		name, body string
		want       []string // substrings of the error
	}{
		{"unknown property", "consul:8600 {\n    discovery {\n        node n1\n        bogus 1\n    }\n}\n",
			[]string{"Corefile:4 - Error during parsing", `property "bogus"`}},
		{"bad value", "consul:8600 {\n    discovery {\n        http 127.0.0.1:99999\n    }\n}\n",
			[]string{"Corefile:3", `property "http"`}},
		{"unknown directive", "consul:8600 {\n    discovery\n    nosuchplugin\n}\n",
			[]string{"Corefile:3", "Unknown directive 'nosuchplugin'"}},
		{"syntax", "consul:8600 {\n    discovery {\n        node n1\n", []string{"Corefile:3", "Unexpected EOF"}},
		{"two in one block", "consul:8600 {\n    discovery\n    discovery\n}\n", []string{"only one discovery block"}},
		{"blocks disagree", "consul:8600 {\n    discovery {\n        node n1\n    }\n}\ndc1:8600 {\n    discovery {\n" +
			"        node n2\n    }\n}\n", []string{"Corefile:7", "agent setting node", "line 2"}},
		{"bad key", "consul: {\n    discovery\n}\n", []string{"expecting data after last colon"}},
	} {
		path := writeCorefile(t, tc.body)
		err := validateCorefile(path, testDirectives())
		if err == nil {
			t.Errorf("%s: accepted\n%s", tc.name, tc.body)
			continue
		}
		for _, want := range append(tc.want, path) {
			if want == path && tc.name == "bad key" {
				continue // CoreDNS's key errors do not name the file
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, want)
			}
		}
	}

	if err := validateCorefile(filepath.Join(t.TempDir(), "missing"), testDirectives()); err == nil ||
		!strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing Corefile: %v", err)
	}
	if entries, _ := os.ReadDir(dataDir); len(entries) > 0 {
		t.Errorf("validating wrote into data_dir: %v", entries)
	}
}

// Without a running CoreDNS instance there is nothing to reload: the
// error says so.
func TestReloadCorefileWithoutInstance(t *testing.T) {
	if err := ReloadCorefile(); err == nil || !strings.Contains(err.Error(), "no CoreDNS instance") {
		t.Errorf("ReloadCorefile() = %v", err)
	}
}
