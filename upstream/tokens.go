package upstream

// Tokens counts tokens the way the platform bills them: one token per 4
// bytes of UTF-8 text, rounded up.
func Tokens(s string) int { return ByteTokens(len(s)) }

// ByteTokens counts n bytes of text as tokens, as Tokens does.
func ByteTokens(n int) int { return (n + 3) / 4 }
