package upstream

// Tokens counts tokens the way the platform bills them: one token per 4
// bytes of UTF-8 text, rounded up.
func Tokens(s string) int { return (len(s) + 3) / 4 }
