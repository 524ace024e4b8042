package handlers

// What the tests of package handlers_test read of the role table.

// RoutePermission returns the permission a console route declares.
func (a *App) RoutePermission(method, path string) (string, bool) {
	p, ok := a.routePerms[method+" "+path]
	return string(p), ok
}

// RoleAllows says whether role holds the named permission.
func RoleAllows(role, perm string) bool { return allowed(role, permission(perm)) }

// RoleTableMarkdown is the role table as the README shows it.
func RoleTableMarkdown() string { return roleTableMarkdown() }
