package models_test

import (
	"strings"
	"testing"

	"ttconsole/models"
)

func TestRedactSecrets(t *testing.T) {
	secret := "sk-tt-" + "Ab3d" + strings.Repeat("x", 35) + "WxY9" // a real key's length: 43 characters
	other := "sk-tt-0000" + strings.Repeat("Q", 35) + "zzzz"
	cases := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"no secret", "/v1/chat/completions", "/v1/chat/completions"},
		{"a secret alone", secret, "sk-tt-Ab3d…WxY9"},
		{"in a path", "/v1/" + secret + "/models", "/v1/sk-tt-Ab3d…WxY9/models"},
		{"in a message", `No route for GET /v1/` + secret + `/models. See GET /v1/models`, `No route for GET /v1/sk-tt-Ab3d…WxY9/models. See GET /v1/models`},
		{"in a JSON body", `{"error":{"type":"not_found","message":"x ` + secret + `"}}`, `{"error":{"type":"not_found","message":"x sk-tt-Ab3d…WxY9"}}`},
		{"in a URL", "http://h/v1/v1/" + secret + "?q=" + other, "http://h/v1/v1/sk-tt-Ab3d…WxY9?q=sk-tt-0000…zzzz"},
		{"two, touching", secret + other, "sk-tt-Ab3d…WxY9sk-tt-0000…zzzz"},
		{"glued to a word", "key=x" + secret + "!", "key=xsk-tt-Ab3d…WxY9!"},
		{"a partial secret", "sk-tt-abcdefghi", "sk-tt-abcd…fghi"},
		{"longer than a key", "sk-tt-" + strings.Repeat("a", 200) + "bcde", "sk-tt-aaaa…bcde"},
		{"eight characters stay", "sk-tt-abcdefgh", "sk-tt-abcdefgh"},
		{"the display form stays", `The API key "ci" (sk-tt-Ab3d…WxY9) has been revoked`, `The API key "ci" (sk-tt-Ab3d…WxY9) has been revoked`},
		{"the prefix alone", "send sk-tt-… keys", "send sk-tt-… keys"},
		{"at the end", "ends with sk-tt-", "ends with sk-tt-"},
		{"stops at a non-base62 byte", "sk-tt-abcdefghij-klm", "sk-tt-abcd…ghij-klm"},
		{"non-ASCII around", "日本 " + secret + " 🙂", "日本 sk-tt-Ab3d…WxY9 🙂"},
		{"another prefix", "sk-live-" + strings.Repeat("a", 40), "sk-live-" + strings.Repeat("a", 40)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := models.RedactSecrets(tc.in)
			if got != tc.want {
				t.Fatalf("RedactSecrets(%q)\n = %q\nwant %q", tc.in, got, tc.want)
			}
			if again := models.RedactSecrets(got); again != got {
				t.Fatalf("redacting twice changes %q to %q", got, again)
			}
		})
	}
}
