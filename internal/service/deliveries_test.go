package service

import (
	"testing"
	"time"
)

// The wait before a delivery's next attempt doubles from the base and
// stops at the cap.
func TestDeliveryBackoff(t *testing.T) {
	cfg := Config{DeliveryBackoffBase: 2 * time.Second, DeliveryBackoffMax: 5 * time.Minute}
	s := &Sites{base: &base{cfg: cfg}}
	for _, tc := range []struct {
		attempts int
		want     time.Duration
	}{
		{1, 2 * time.Second}, {2, 4 * time.Second}, {3, 8 * time.Second}, {8, 256 * time.Second}, {9, 5 * time.Minute}, {1000, 5 * time.Minute},
	} {
		if got := s.backoff(tc.attempts); got != tc.want {
			t.Errorf("backoff(%d) = %s, want %s", tc.attempts, got, tc.want)
		}
	}
}
