// Package shutdown gives every plh binary the same signal contract: the first
// SIGINT or SIGTERM cancels a context so the program can stop gracefully; a second
// one while stopping calls exit(1) at once, without cleanup. The exit function is
// passed in by main, so no library code ever calls os.Exit.
package shutdown
