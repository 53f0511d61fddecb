package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// maxIncludeDepth bounds nested includes (a cycle is reported before that).
const maxIncludeDepth = 8

// Variant is one scenario ready to resolve: a file after includes, with one
// combination of its matrix applied.
type Variant struct {
	Scenario *Scenario
	File     string // the scenario file as named by the caller
	Vars     []Var  // the matrix combination (empty without a matrix)
	src      []byte // the file's text, to locate keys in validation errors
}

// Var is one matrix variable set for a variant.
type Var struct {
	Key   string `toml:"key"`
	Value string `toml:"value"`
}

// Load reads a scenario file, applies its includes, expands its matrix and
// validates every variant. Errors name the file, the line and the key; they wrap
// ErrScenario.
func Load(file string) ([]Variant, error) {
	s, src, err := loadFile(file, 0, nil)
	if err != nil {
		return nil, err
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	combos, err := expandMatrix(file, src, s)
	if err != nil {
		return nil, err
	}
	out := make([]Variant, 0, len(combos))
	for _, c := range combos {
		v := Variant{Scenario: c.s, File: file, Vars: c.vars, src: src}
		if err := validate(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// decodeStrict decodes src into v, rejecting unknown keys, and turns go-toml's
// errors into ones naming file, line and key.
func decodeStrict(file string, src []byte, v any) error {
	d := toml.NewDecoder(bytes.NewReader(src)).EnableUnmarshalerInterface()
	d.DisallowUnknownFields()
	err := d.Decode(v)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		var msgs []string
		for i := range strict.Errors {
			e := &strict.Errors[i]
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d: unknown key %q", file, row, keyOf(e.Key(), src, row)))
		}
		return fmt.Errorf("%w: %s", ErrScenario, strings.Join(msgs, "; "))
	}
	var bad *durationError
	if errors.As(err, &bad) {
		if row := durationLine(src, bad.raw); row > 0 {
			return fmt.Errorf("%w: %s:%d: key %q: %v", ErrScenario, file, row, keyOf(nil, src, row), err)
		}
		return fmt.Errorf("%w: %s: %v", ErrScenario, file, err)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		return fmt.Errorf("%w: %s:%d: key %q: %s", ErrScenario, file, row, keyOf(de.Key(), src, row), msg)
	}
	return fmt.Errorf("%w: %s: %v", ErrScenario, file, err)
}

// durationKeys are the keys whose values are durations (or lists of them).
var durationKeys = func() map[string]bool {
	keys := map[string]bool{}
	dt := reflect.TypeFor[Duration]()
	for _, t := range []reflect.Type{reflect.TypeFor[Scenario](), reflect.TypeFor[HubSpec](), reflect.TypeFor[NodeSpec](),
		reflect.TypeFor[FaultSpec](), reflect.TypeFor[RandomSpec](), reflect.TypeFor[ExpectSpec](), reflect.TypeFor[Plan]()} {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Type == dt || (f.Type.Kind() == reflect.Slice && f.Type.Elem() == dt) {
				keys[strings.Split(f.Tag.Get("toml"), ",")[0]] = true
			}
		}
	}
	return keys
}()

// durationLine returns the first line (0: none found) that sets a duration
// key to a value containing raw: as written when raw is quoted, else as a bare
// token outside quotes.
func durationLine(src []byte, raw string) int {
	if raw == "" {
		return 0
	}
	bare := regexp.MustCompile(`(^|[\s\[,])` + regexp.QuoteMeta(raw) + `($|[\s\],])`)
	for i, l := range strings.Split(string(src), "\n") {
		m := keyLine.FindStringSubmatch(l)
		if m == nil || !durationKeys[strings.Trim(m[1], `"`)] {
			continue
		}
		val := l[len(m[0]):]
		if raw[0] == '"' || raw[0] == '\'' {
			if strings.Contains(val, raw) {
				return i + 1
			}
		} else if bare.MatchString(quoted.ReplaceAllString(val, `""`)) {
			return i + 1
		}
	}
	return 0
}

var quoted = regexp.MustCompile(`"[^"]*"|'[^']*'`)

var keyLine = regexp.MustCompile(`^\s*("?[A-Za-z0-9_.\-]+"?)\s*=`)
var tableLine = regexp.MustCompile(`^\s*\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?`)

// keyOf names the key of an error: go-toml's key when it has one, else the key
// written on that line of the source, prefixed by the table it is in.
func keyOf(k toml.Key, src []byte, row int) string {
	if len(k) > 0 {
		return strings.Join(k, ".")
	}
	lines := strings.Split(string(src), "\n")
	if row < 1 || row > len(lines) {
		return "?"
	}
	key := ""
	if m := keyLine.FindStringSubmatch(lines[row-1]); m != nil {
		key = strings.Trim(m[1], `"`)
	}
	for i := row - 1; i >= 0; i-- {
		if m := tableLine.FindStringSubmatch(lines[i]); m != nil {
			if key == "" {
				return m[1]
			}
			return m[1] + "." + key
		}
	}
	if key == "" {
		return "?"
	}
	return key
}

// loadFile decodes one file and, recursively, its includes; values of the file
// override those of its fragments and lists are appended after theirs.
func loadFile(file string, depth int, chain []string) (*Scenario, []byte, error) {
	abs, _ := filepath.Abs(file)
	for _, c := range chain {
		if c == abs {
			return nil, nil, fmt.Errorf("%w: %s: include cycle through %s", ErrScenario, file, strings.Join(chain, " -> "))
		}
	}
	if depth > maxIncludeDepth {
		return nil, nil, fmt.Errorf("%w: %s: includes nested deeper than %d", ErrScenario, file, maxIncludeDepth)
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrScenario, err)
	}
	var s Scenario
	if err := decodeStrict(file, src, &s); err != nil {
		return nil, nil, err
	}
	if len(s.Include) == 0 {
		return &s, src, nil
	}
	base := &Scenario{}
	for _, inc := range s.Include {
		if filepath.IsAbs(inc) {
			return nil, nil, fmt.Errorf("%w: %s:%d: key \"include\": %q must be a relative path",
				ErrScenario, file, lineOf(src, "include", inc), inc)
		}
		p := filepath.Join(filepath.Dir(file), inc)
		if _, err := os.Stat(p); err != nil {
			return nil, nil, fmt.Errorf("%w: %s:%d: key \"include\": %v", ErrScenario, file, lineOf(src, "include", inc), err)
		}
		frag, _, err := loadFile(p, depth+1, append(chain, abs))
		if err != nil {
			return nil, nil, err
		}
		merge(base, frag)
	}
	merge(base, &s)
	base.Include = s.Include
	return base, src, nil
}

// merge lays over onto base: non-zero scalars and tables replace, lists append.
func merge(base, over *Scenario) {
	bv, ov := reflect.ValueOf(base).Elem(), reflect.ValueOf(over).Elem()
	for i := 0; i < bv.NumField(); i++ {
		f := ov.Field(i)
		if f.IsZero() {
			continue
		}
		switch f.Kind() {
		case reflect.Slice:
			bv.Field(i).Set(reflect.AppendSlice(bv.Field(i), f))
		case reflect.Map:
			if bv.Field(i).IsNil() {
				bv.Field(i).Set(reflect.MakeMap(f.Type()))
			}
			for _, k := range f.MapKeys() {
				bv.Field(i).SetMapIndex(k, f.MapIndex(k))
			}
		default:
			bv.Field(i).Set(f)
		}
	}
}

// linesOf returns every line of src where key is set to a value containing val
// (at least one entry: 0 when not found).
func linesOf(src []byte, key, val string) []int {
	var out []int
	for i, l := range strings.Split(string(src), "\n") {
		m := keyLine.FindStringSubmatch(l)
		if m != nil && strings.Trim(m[1], `"`) == key && strings.Contains(l[len(m[0]):], val) {
			out = append(out, i+1)
		}
	}
	if len(out) == 0 {
		out = []int{0}
	}
	return out
}

// lineOf returns the first line of src where key is set to a value containing
// val (val may be ""), or where key appears; 0 when not found.
func lineOf(src []byte, key, val string) int {
	lines := strings.Split(string(src), "\n")
	first := 0
	for i, l := range lines {
		m := keyLine.FindStringSubmatch(l)
		if m == nil || strings.Trim(m[1], `"`) != key {
			continue
		}
		if first == 0 {
			first = i + 1
		}
		if val == "" || strings.Contains(l[len(m[0]):], val) {
			return i + 1
		}
	}
	return first
}

type combo struct {
	s    *Scenario
	vars []Var
}

// expandMatrix returns one scenario per combination of the matrix variables
// (keys in sorted order, values in the order written). A key is a dotted path
// of TOML keys: "duration", "hub.channel_timeout", "consumers.delay_per_read"
// (every consumer) or "consumers.c.delay_per_read" (the consumer named c).
func expandMatrix(file string, src []byte, s *Scenario) ([]combo, error) {
	if len(s.Matrix) == 0 {
		return []combo{{s: s}}, nil
	}
	keys := make([]string, 0, len(s.Matrix))
	for k := range s.Matrix {
		if len(s.Matrix[k]) == 0 {
			return nil, fmt.Errorf("%w: %s:%d: key \"matrix.%s\": no values", ErrScenario, file, lineOf(src, k, ""), k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	total := 1
	for _, k := range keys {
		total *= len(s.Matrix[k])
		if total > MaxVariants {
			return nil, fmt.Errorf("%w: %s:%d: key \"matrix\": more than %d combinations", ErrScenario, file, lineOf(src, k, ""), MaxVariants)
		}
	}
	combos := []combo{{}}
	for _, k := range keys {
		var next []combo
		for _, c := range combos {
			for _, v := range s.Matrix[k] {
				vars := append(append([]Var(nil), c.vars...), Var{Key: k, Value: fmt.Sprint(v)})
				next = append(next, combo{vars: vars})
			}
		}
		combos = next
	}
	for i := range combos {
		cp, err := cloneScenario(s)
		if err != nil {
			return nil, err
		}
		cp.Matrix = nil
		var tags []string
		for j, v := range combos[i].vars {
			val := s.Matrix[v.Key][indexOf(s.Matrix[v.Key], v.Value)]
			if err := setPath(reflect.ValueOf(cp).Elem(), strings.Split(v.Key, "."), val); err != nil {
				return nil, fmt.Errorf("%w: %s:%d: key \"matrix.%s\": %v", ErrScenario, file, lineOf(src, v.Key, ""), v.Key, err)
			}
			tags = append(tags, combos[i].vars[j].Key+"="+combos[i].vars[j].Value)
		}
		cp.Name = s.Name + "[" + strings.Join(tags, ",") + "]"
		combos[i].s = cp
	}
	return combos, nil
}

func indexOf(vals []any, s string) int {
	for i, v := range vals {
		if fmt.Sprint(v) == s {
			return i
		}
	}
	return 0
}

// cloneScenario deep-copies s through TOML.
func cloneScenario(s *Scenario) (*Scenario, error) {
	b, err := toml.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("%w: copy scenario: %v", ErrScenario, err)
	}
	var cp Scenario
	if err := toml.Unmarshal(b, &cp); err != nil {
		return nil, fmt.Errorf("%w: copy scenario: %v", ErrScenario, err)
	}
	return &cp, nil
}

// setPath assigns val to the field at path under v (a struct), decoding val
// through TOML so enum and duration checks apply.
func setPath(v reflect.Value, path []string, val any) error {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return setPath(v.Elem(), path, val)
	case reflect.Slice:
		if v.Len() == 0 {
			return fmt.Errorf("no entries to set %q in", strings.Join(path, "."))
		}
		for i := 0; i < v.Len(); i++ {
			el := v.Index(i)
			if len(path) > 1 && el.FieldByName("Name").IsValid() && el.FieldByName("Name").String() == path[0] {
				return setPath(el, path[1:], val)
			}
		}
		for i := 0; i < v.Len(); i++ {
			if err := setPath(v.Index(i), path, val); err != nil {
				return err
			}
		}
		return nil
	case reflect.Struct:
		f, ok := fieldByTag(v, path[0])
		if !ok {
			return fmt.Errorf("no key %q", path[0])
		}
		if len(path) > 1 {
			return setPath(f, path[1:], val)
		}
		return assign(f, val)
	}
	return fmt.Errorf("cannot set %q", strings.Join(path, "."))
}

func fieldByTag(v reflect.Value, tag string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if strings.Split(t.Field(i).Tag.Get("toml"), ",")[0] == tag {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func assign(f reflect.Value, val any) error {
	b, err := toml.Marshal(map[string]any{"v": val})
	if err != nil {
		return err
	}
	holder := reflect.New(reflect.StructOf([]reflect.StructField{{
		Name: "V", Type: f.Type(), Tag: `toml:"v"`,
	}}))
	if err := toml.NewDecoder(bytes.NewReader(b)).EnableUnmarshalerInterface().Decode(holder.Interface()); err != nil {
		return fmt.Errorf("value %v: %v", val, strings.TrimPrefix(err.Error(), "toml: "))
	}
	f.Set(holder.Elem().Field(0))
	return nil
}
