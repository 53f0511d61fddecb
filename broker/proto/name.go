package proto

import "strings"

// pidSuffix starts the display suffix of a channel or DataBlock name (B-21).
const pidSuffix = " | pid:"

// LogicalName returns the part of a channel name that identifies the channel
// (B-21): a display name "<name> | pid:<pid>-<n>" (spec api.md: a producer's
// name()) names the channel "<name>". Only a suffix of exactly that shape, at
// the end of the name, is cut (pid and n are decimal digits); any other name is
// its own logical name. The broker compares logical names in every lookup.
func LogicalName(name string) string {
	i := strings.LastIndex(name, pidSuffix)
	if i <= 0 {
		return name
	}
	pid, n, ok := strings.Cut(name[i+len(pidSuffix):], "-")
	if !ok || !digits(pid) || !digits(n) {
		return name
	}
	return name[:i]
}

func digits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
