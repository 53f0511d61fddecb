//go:build !plh_seeded_bug

package broker

// seededDeregBug: see seeded_bug.go; false in every real build.
const seededDeregBug = false
