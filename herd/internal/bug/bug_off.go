//go:build !herdbugs

// Package bug holds deliberate bugs that prove the spec suite catches them. They exist
// only in a binary built with the herdbugs tag (the suite builds one when HERD_BUGS is
// set); in the shipped binary On is constant false and the bugs are compiled out.
package bug

// On reports whether the named bug is switched on.
func On(string) bool { return false }
