package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const programBase = `name = "prog"
duration = "2s"

[[consumers]]
name = "c"
channel = "cam"
`

func TestProgramAccepted(t *testing.T) {
	p, err := loadOne(t, programBase+`
[[producers]]
name = "p"
channel = "cam"
command = ["sh", "-c", "exit 0"]
env = { CAM = "1" }
dir = "."
events = "NONE"
`)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := p.Node("p")
	if !n.IsProgram() || !n.Silent() || !filepath.IsAbs(n.Dir) || n.Env["CAM"] != "1" {
		t.Fatalf("node %+v", n)
	}
	b, err := p.Encode()
	if err != nil || !strings.Contains(string(b), "command") {
		t.Fatalf("resolved.toml %s: %v", b, err)
	}
}

func TestProgramRefused(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"unknown key", "[[producers]]\nname = \"p\"\nchannel = \"cam\"\ncommand = [\"sh\"]\ncommandz = 1\n", "s.toml:11: unknown key \"producers.commandz\""},
		{"empty command", "[[producers]]\nname = \"p\"\nchannel = \"cam\"\ncommand = []\n", "command is empty"},
		{"blank program", "[[producers]]\nname = \"p\"\nchannel = \"cam\"\ncommand = [\"\"]\n", "command is empty"},
		{"not found", "[[producers]]\nname = \"p\"\nchannel = \"cam\"\ncommand = [\"no-such-program-plh\"]\n", `command "no-such-program-plh" not found`},
		{"missing script path", "[[producers]]\nname = \"p\"\nchannel = \"cam\"\ncommand = [\"./cam.py\"]\n", `command "./cam.py" not found`},
		{"args with command", "[[producers]]\nname = \"p\"\nchannel = \"cam\"\ncommand = [\"sh\"]\nargs = [\"--rate\", \"1\"]\n", "put the program's arguments in command"},
		{"env without command", "[[producers]]\nname = \"p\"\nchannel = \"cam\"\nenv = { A = \"1\" }\n", "env needs command"},
		{"bad events", "[[producers]]\nname = \"p\"\nchannel = \"cam\"\ncommand = [\"sh\"]\nevents = \"some\"\n", "unknown events mode"},
		{"no such dir", "[[producers]]\nname = \"p\"\nchannel = \"cam\"\ncommand = [\"sh\"]\ndir = \"nowhere\"\n", "is not a folder"},
		{"hold_lock on a program", "[[producers]]\nname = \"p\"\nchannel = \"cam\"\ncommand = [\"sh\"]\n[[faults]]\nat = \"1s\"\nkind = \"kill_holding_lock\"\ntarget = \"p\"\n", "runs its own program"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadOne(t, programBase+c.body)
			if !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestProgramPathRelativeToTheFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"sub/s.toml": programBase + "[[producers]]\nname = \"p\"\nchannel = \"cam\"\ncommand = [\"./cam.sh\"]\n"})
	if err := os.WriteFile(filepath.Join(dir, "sub", "cam.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	vs, err := Load(filepath.Join(dir, "sub", "s.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := vs[0].Scenario.Producers[0].Dir; got != filepath.Join(dir, "sub") {
		t.Fatalf("dir %q", got)
	}
}
