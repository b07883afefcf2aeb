package binance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/backoff"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

func TestRetryDelay(t *testing.T) {
	bo := func() *backoff.Backoff { return backoff.New(backoff.Policy{Initial: time.Second, Max: time.Second}) }
	for _, tc := range []struct {
		err      error
		min, max time.Duration
	}{
		{&HandshakeError{Status: 429, RetryAfter: 90 * time.Second}, 90 * time.Second, 90 * time.Second},
		{&HandshakeError{Status: 418}, rateLimitedRetry, rateLimitedRetry},
		{&HandshakeError{Status: 403}, refusedRetry, refusedRetry},
		{&HandshakeError{Status: 400}, refusedRetry, refusedRetry},
		{fmt.Errorf("subscribe: %w", &wire.ServerError{Code: 2, Msg: "Invalid request"}), refusedRetry, refusedRetry},
		{&HandshakeError{Status: 502}, 500 * time.Millisecond, time.Second},
		{errors.New("dial: connection refused"), 500 * time.Millisecond, time.Second},
	} {
		if d := retryDelay(tc.err, bo()); d < tc.min || d > tc.max {
			t.Errorf("retryDelay(%v) = %v, want within [%v, %v]", tc.err, d, tc.min, tc.max)
		}
	}
}
