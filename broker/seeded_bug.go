//go:build plh_seeded_bug

package broker

// seededDeregBug is true only in a test build (-tags plh_seeded_bug): on a
// CONSUMER_DEREG_REQ the broker removes the channel's first registration
// instead of the deregistering consumer's, which leaks. A defect planted on
// purpose so that explore can be shown to find and shrink it (suites/explore).
const seededDeregBug = true
