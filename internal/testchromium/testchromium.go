// Package testchromium runs Debian's headless Chromium for tests, driven
// over the DevTools protocol (chromedp): a page loaded from a server on
// loopback, read from its DOM, and a screenshot.
package testchromium

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Environment variables.
const (
	// EnvBinary is the path of the chromium binary; the default is
	// "chromium" on PATH (Debian's package, which scripts/chromium.sh
	// installs).
	EnvBinary = "SLUICE_CHROMIUM"
	// EnvRequire, set to 1, turns a missing binary into a test failure
	// instead of a skip, so that CI cannot pass by skipping.
	EnvRequire = "SLUICE_REQUIRE_CHROMIUM"
)

// Require returns the chromium binary, or skips the test (fails it with
// SLUICE_REQUIRE_CHROMIUM=1) when there is none.
func Require(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvBinary)
	if bin == "" {
		bin = "chromium"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		msg := fmt.Sprintf("testchromium: no %s (%v); install it with scripts/chromium.sh (Debian's chromium; needs root) or set %s", bin, err, EnvBinary)
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// New starts a headless Chromium with its own profile directory, and
// returns a browser context (a tab) bounded by timeout; both end with the
// test. The flags keep it off the network but for the pages it is sent to
// (no background fetches, updates or sync) and let it run as root in a
// container (no sandbox, no GPU).
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	bin := Require(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	return ctx
}
