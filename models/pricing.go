package models

import "math"

// TokenCost prices a call exactly: tokens times prices per million tokens,
// rounded up to the whole micro-dollar once per call. A negative count
// costs nothing, and a product too large for an int64 is the largest
// cost there is (a call is never charged more than its hold), never a
// number that wrapped around.
func TokenCost(promptTokens, completionTokens int, inputPerMTok, outputPerMTok int64) int64 {
	in, okIn := mulMicros(int64(max(promptTokens, 0)), max(inputPerMTok, 0))
	out, okOut := mulMicros(int64(max(completionTokens, 0)), max(outputPerMTok, 0))
	if !okIn || !okOut || in > math.MaxInt64-999_999-out {
		return math.MaxInt64 / 1_000_000
	}
	return (in + out + 999_999) / 1_000_000
}

// mulMicros is a*b for non-negative a and b, and whether it fits.
func mulMicros(a, b int64) (int64, bool) {
	if a != 0 && b > math.MaxInt64/a {
		return 0, false
	}
	return a * b, true
}

// DefaultMaxTokens is the completion budget held for a chat call that sets none.
const DefaultMaxTokens = 1024
