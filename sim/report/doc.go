// Package report writes the files of a run folder (docs/scenarios.md, "Run
// folder"): resolved.toml and replay.sh before the run (WriteStatic), then the
// merged timeline as events.jsonl (WriteEvents, read back by ReadEvents) and
// the outcome as results.json, junit.xml (one test case per expectation,
// inconclusive = skipped, a fault that could not fire = skipped) and
// timeline.html (WriteReports). timeline.html is self-contained: inline SVG and
// CSS, no script, no network, every event text escaped; markers per lane are
// capped so a flooding node cannot blow the page up.
package report
