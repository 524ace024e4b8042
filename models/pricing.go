package models

// TokenCost prices a call exactly: tokens times prices per million tokens,
// rounded up to the whole micro-dollar once per call.
func TokenCost(promptTokens, completionTokens int, inputPerMTok, outputPerMTok int64) int64 {
	num := int64(promptTokens)*inputPerMTok + int64(completionTokens)*outputPerMTok
	return (num + 999_999) / 1_000_000
}

// DefaultMaxTokens is the completion budget held for a chat call that sets none.
const DefaultMaxTokens = 1024
