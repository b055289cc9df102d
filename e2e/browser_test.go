package e2e

// A headless Chromium driven over the DevTools protocol (chromedp), for
// the web UI's tests: one browser per test, stopped with it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// updateUIDocs writes the services view's screenshot to
// docs/ui-services.png, the README's picture of the UI.
var updateUIDocs = flag.Bool("update-ui-docs", false, "write the UI tests' services screenshot to docs/ui-services.png")

const (
	// browserStepTimeout bounds one browser action (a navigation, a
	// click, reading the page).
	browserStepTimeout = 30 * time.Second
	// uiWaitTimeout bounds waiting for the page to show something: a
	// blocking query's answer, a render.
	uiWaitTimeout = 15 * time.Second
)

// chromiumPath is the browser the UI tests drive: $BEACON_CHROMIUM, else
// Debian's chromium.
func chromiumPath() (string, error) {
	if p := os.Getenv("BEACON_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium: install Debian's chromium package (apt-get install -y chromium) or set BEACON_CHROMIUM")
}

// Browser is one headless Chromium with one tab, for one test.
type Browser struct {
	t   *testing.T
	ctx context.Context // the tab's
	// shots is where screenshots go: $BEACON_UI_SCREENSHOTS when set (kept
	// after the test), else the test's temporary directory.
	shots string

	mu       sync.Mutex
	problems []string // uncaught exceptions and CSP violations in the page
	console  []string // everything else the page logged, for a failure
}

// StartBrowser starts Chromium, skipping the test (saying why) when there
// is none, except on CI, which installs it: there a missing browser fails.
// The browser is stopped, and its profile removed, when the test ends; a
// failed test logs what the page printed.
func StartBrowser(t *testing.T) *Browser {
	t.Helper()
	path, err := chromiumPath()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser tests on CI: %v (.ci/run installs it)", err)
		}
		t.Skipf("skipping the browser test: %v", err)
	}
	shots := os.Getenv("BEACON_UI_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	} else {
		shots = filepath.Join(shots, strings.ReplaceAll(t.Name(), "/", "_"))
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		// Root in a container: no sandbox; the new headless mode; no GPU;
		// /dev/shm is small in containers.
		chromedp.NoSandbox,
		chromedp.Flag("headless", "new"),
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1360, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &Browser{t: t, shots: shots}
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(b.protocolError))
	b.ctx = ctx
	// Registered after the temporary directories, so it runs before their
	// removal: the browser is gone (and waited for) first.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		if t.Failed() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if len(b.console) > 0 {
				t.Logf("---- the page's console ----\n%s", strings.Join(b.console, "\n"))
			}
		}
	})
	// Listen starts the browser (so that its start-up is not counted in
	// the first thing a test measures) and hears the page from then on.
	if err := chromedp.Listen(ctx, b.onEvent); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	b.Run(chromedp.Navigate("about:blank"))
	t.Logf("screenshots go to %s", shots)
	return b
}

// protocolError keeps chromedp's complaints (events of a newer browser it
// cannot decode, say) with the console, for a failure.
func (b *Browser) protocolError(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.console = append(b.console, "chromedp: "+fmt.Sprintf(format, args...))
}

func (b *Browser) onEvent(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		b.problems = append(b.problems, fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber, msg))
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		b.console = append(b.console, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " ")))
	case *log.EventEntryAdded:
		e := ev.Entry
		line := fmt.Sprintf("%s %s: %s %s", e.Source, e.Level, e.Text, e.URL)
		b.console = append(b.console, line)
		if strings.Contains(e.Text, "Content Security Policy") {
			b.problems = append(b.problems, "CSP violation: "+line)
		}
	}
}

// CheckPage fails the test if the page threw an uncaught exception or
// broke its Content-Security-Policy so far.
func (b *Browser) CheckPage() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Error(p)
	}
	b.problems = nil
}

// Run runs actions in the tab, failing the test on error.
func (b *Browser) Run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(fmt.Sprintf("browser: %v", err))
	}
}

// fail ends the test with msg, the page's URL and text, and a screenshot.
func (b *Browser) fail(msg string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	url, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	png, _ := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	shot := ""
	if len(png) > 0 {
		shot = filepath.Join(b.shots, "failure.png")
		_ = os.WriteFile(shot, png, 0o644)
	}
	b.t.Fatalf("%s\npage %s (screenshot %s):\n%s", msg, url, shot, tail(text, 8<<10))
}

// Eval evaluates a JavaScript expression for its effect.
func (b *Browser) Eval(js string) {
	b.t.Helper()
	evalJS[chromedp.Void](b, js)
}

// evalJS evaluates a JavaScript expression into a T.
func evalJS[T any](b *Browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.fail(fmt.Sprintf("evaluating %s: %v", js, err))
	}
	return v
}

// WaitJS waits until the expression js is truthy, failing with what and
// the page if it is not within uiWaitTimeout. The browser polls it.
func (b *Browser) WaitJS(what, js string) {
	b.t.Helper()
	b.WaitJSFor(uiWaitTimeout, what, js)
}

// WaitJSFor is WaitJS with its own timeout.
func (b *Browser) WaitJSFor(timeout time.Duration, what, js string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	// An expression that throws (an element not there yet) is false: the
	// browser would otherwise end the poll at the first exception.
	guarded := fmt.Sprintf("(() => { try { return (%s); } catch (e) { return false; } })()", js)
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](guarded,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		b.fail(fmt.Sprintf("waiting for %s (%s): %v", what, js, err))
	}
}

// Text is the rendered text of the first element matching the CSS
// selector, "" when there is none.
func (b *Browser) Text(selector string) string {
	b.t.Helper()
	return evalJS[string](b, fmt.Sprintf(`(document.querySelector(%s) || {innerText: ""}).innerText`, jsString(selector)))
}

// Texts are the rendered texts of every element matching selector.
func (b *Browser) Texts(selector string) []string {
	b.t.Helper()
	return evalJS[[]string](b, fmt.Sprintf(`Array.from(document.querySelectorAll(%s), (e) => e.innerText)`, jsString(selector)))
}

// WaitText waits until the element matching selector shows text
// containing want.
func (b *Browser) WaitText(selector, want string) {
	b.t.Helper()
	b.WaitJS(fmt.Sprintf("%s to show %q", selector, want),
		fmt.Sprintf(`((e) => e && e.innerText.includes(%s))(document.querySelector(%s))`, jsString(want), jsString(selector)))
}

// WaitGone waits until nothing matches selector.
func (b *Browser) WaitGone(selector string) {
	b.t.Helper()
	b.WaitJS(selector+" to be gone", fmt.Sprintf(`document.querySelector(%s) === null`, jsString(selector)))
}

// WaitVisible waits until an element matching selector is displayed.
func (b *Browser) WaitVisible(selector string) {
	b.t.Helper()
	b.WaitJS(selector+" to be visible", fmt.Sprintf(
		`((e) => e !== null && !e.closest('[hidden]') && e.getClientRects().length > 0)(document.querySelector(%s))`, jsString(selector)))
}

// Click clicks the first element matching selector (which must exist).
// Finding the element and clicking it happen in one evaluation in the
// page: the UI re-renders live lists when a blocking query returns, and a
// click driven from outside (find the node, then ask for its box, then
// press) fails on a node replaced in between. The click goes to the
// element under the centre of the target, as a person's would, and fails
// if that is not the target or inside it.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	b.WaitVisible(selector)
	problem := evalJS[string](b, fmt.Sprintf(`((e) => {
		if (e === null) return "nothing matches";
		e.scrollIntoView({block: "center", inline: "center"});
		const r = e.getBoundingClientRect();
		const under = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
		if (under === null || !e.contains(under)) return "it is covered by " + (under ? under.outerHTML.slice(0, 200) : "nothing");
		under.click();
		return "";
	})(document.querySelector(%s))`, jsString(selector)))
	if problem != "" {
		b.fail(fmt.Sprintf("clicking %s: %s", selector, problem))
	}
}

// SetInput gives a text field or a select a value as a person would
// change it: input and change events fire.
func (b *Browser) SetInput(selector, value string) {
	b.t.Helper()
	b.WaitVisible(selector)
	b.Eval(fmt.Sprintf(`((e) => { e.value = %s; e.dispatchEvent(new Event('input', {bubbles: true}));
		e.dispatchEvent(new Event('change', {bubbles: true})); return true; })(document.querySelector(%s))`,
		jsString(value), jsString(selector)))
}

// Submit submits the form matching selector, as pressing its submit
// button does.
func (b *Browser) Submit(selector string) {
	b.t.Helper()
	b.WaitVisible(selector)
	b.Eval(fmt.Sprintf(`(document.querySelector(%s).requestSubmit(), true)`, jsString(selector)))
}

// Go moves the page to a route of the UI (a hash) without reloading it.
func (b *Browser) Go(hash string) {
	b.t.Helper()
	b.Eval(fmt.Sprintf(`(location.hash = %s, true)`, jsString(hash)))
}

// Screenshot saves the whole page as name.png and returns the file.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		b.fail(fmt.Sprintf("screenshot %s: %v", name, err))
	}
	file := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", file)
	return file
}

// jsString quotes s as a JavaScript string literal, which is also a CSS
// string (for attribute selectors): "<" and ">" are left as they are, since
// CSS does not read JSON's \u003c.
func jsString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}
