package models_test

import (
	"math"
	"testing"

	"ttconsole/models"
)

// TestTokenCost: the price of a call in whole micro-dollars, rounded up
// once; usage an upstream should never report (negative, or so large the
// product does not fit) never makes a call cheap.
func TestTokenCost(t *testing.T) {
	const huge = math.MaxInt64 / 1_000_000
	for _, c := range []struct {
		name               string
		prompt, completion int
		in, out            int64
		want               int64
	}{
		{"nothing", 0, 0, 150_000, 600_000, 0},
		{"one prompt token rounds up to a micro-dollar", 1, 0, 150_000, 600_000, 1},
		{"rounded once per call, not per side", 3, 2, 150_000, 600_000, 2},
		{"a million of each", 1_000_000, 1_000_000, 150_000, 600_000, 750_000},
		{"a negative prompt costs nothing, the completion still counts", -1_000_000, 1_000_000, 150_000, 600_000, 600_000},
		{"negative both", -5, -5, 150_000, 600_000, 0},
		{"a prompt too large to price", 200_000_000_000, 0, 60_000_000, 0, huge},
		{"a completion too large to price", 0, math.MaxInt32, 0, math.MaxInt64 / 2, huge},
		{"two sides that fit but whose sum does not", math.MaxInt32, math.MaxInt32, math.MaxInt64 / math.MaxInt32, math.MaxInt64 / math.MaxInt32, huge},
	} {
		if got := models.TokenCost(c.prompt, c.completion, c.in, c.out); got != c.want {
			t.Errorf("%s: TokenCost(%d, %d, %d, %d) = %d, want %d", c.name, c.prompt, c.completion, c.in, c.out, got, c.want)
		}
	}
}
