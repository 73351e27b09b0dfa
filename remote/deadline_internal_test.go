package remote

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The answer wait scales with what the store must do: seconds for small
// requests, long only for assembling or copying large objects, and twice
// as long on each retry.
func TestAnswerWait(t *testing.T) {
	const base = 5 * time.Second
	for _, tc := range []struct {
		name    string
		l       load
		attempt int
		want    time.Duration
	}{
		{"HEAD, GET, LIST", load{}, 1, 5 * time.Second},
		{"4-byte PUT", load{bytes: 4}, 1, 5 * time.Second},
		{"1 MiB PUT", load{bytes: 1 << 20}, 1, 5*time.Second + 100*time.Millisecond},
		{"8 MiB part", load{bytes: 8 << 20}, 1, 5*time.Second + 800*time.Millisecond},
		{"batch delete of 1,000", load{objects: 1000}, 1, 25 * time.Second},
		{"complete 5 GiB", load{bytes: 5 << 30}, 1, 5*time.Second + 512*time.Second},
		{"copy 100 GiB", load{bytes: 100 << 30}, 1, 5*time.Second + 10240*time.Second},
		{"4-byte PUT, 2nd attempt", load{bytes: 4}, 2, 10 * time.Second},
		{"4-byte PUT, 3rd attempt", load{bytes: 4}, 3, 20 * time.Second},
		{"4-byte PUT, 5th attempt", load{bytes: 4}, 5, 80 * time.Second},
		{"4-byte PUT, 9th attempt: no more doublings", load{bytes: 4}, 9, 80 * time.Second},
		{"complete 5 GiB, 2nd attempt", load{bytes: 5 << 30}, 2, 2 * (5*time.Second + 512*time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := answerWait(base, tc.l, tc.attempt); got.Round(time.Millisecond) != tc.want {
				t.Errorf("answerWait(%v, %+v, %d) = %v, want %v", base, tc.l, tc.attempt, got, tc.want)
			}
		})
	}
}

// A request's load is what withLoad said, else its body's length; its
// attempt is what the SDK's amz-sdk-request header says.
func TestLoadAndAttemptOfRequest(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ctx         context.Context
		body        string
		sdkRequest  string
		wantLoad    load
		wantAttempt int
	}{
		{"GET", context.Background(), "", "attempt=1; max=5", load{}, 1},
		{"PUT", context.Background(), "hello", "attempt=3; max=5", load{bytes: 5}, 3},
		{"complete", withLoad(context.Background(), load{bytes: 1 << 30}), "<CompleteMultipartUpload/>", "attempt=2; max=5; ttl=20261207T190000Z", load{bytes: 1 << 30}, 2},
		{"batch delete", withLoad(context.Background(), load{objects: 7}), "<Delete/>", "", load{objects: 7}, 1},
		{"garbled header", context.Background(), "", "attempt=x", load{}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(tc.ctx, http.MethodPut, "http://127.0.0.1:1/b/k", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.sdkRequest != "" {
				req.Header.Set("Amz-Sdk-Request", tc.sdkRequest)
			}
			if got := loadOf(req); got != tc.wantLoad {
				t.Errorf("load %+v, want %+v", got, tc.wantLoad)
			}
			if got := attemptOf(req); got != tc.wantAttempt {
				t.Errorf("attempt %d, want %d", got, tc.wantAttempt)
			}
		})
	}
}
