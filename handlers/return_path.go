package handlers

import "net/url"

// returnTo is the console page a recharge started from, which the
// checkout sends the customer back to once it is paid: the failed call's
// page, say. Only a path on this site counts (safeNext's rules); anything
// else is "", and the customer stays on Billing.
func returnTo(raw string) string {
	if raw == "" || raw == "/" {
		return ""
	}
	if p := safeNext(raw); p != "/" {
		return p
	}
	return ""
}

// withReturnTo adds the return path, when there is one, to a console URL
// that has a query already.
func withReturnTo(u, path string) string {
	if path == "" {
		return u
	}
	return u + "&return_to=" + url.QueryEscape(path)
}
