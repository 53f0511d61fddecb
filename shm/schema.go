package shm

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"golang.org/x/crypto/blake2b"
)

// Field is one member of a BLDS schema (spec §12.1).
type Field struct {
	Name string // member name as hashed
	Type string // BLDS type id: f32 f64 i8 i16 i32 i64 u8 u16 u32 u64 b c
	Len  int    // array length; 0 = scalar
}

// Schema describes a fixed-size plain struct stored in a slot or the flex zone. Its
// hash (BLAKE2b-256 of the BLDS string) is what the header stores and Attach compares.
type Schema struct {
	Name                string // informational, not hashed
	Major, Minor, Patch uint16
	Fields              []Field
}

var bldsTypes = map[string]bool{"f32": true, "f64": true, "i8": true, "i16": true, "i32": true, "i64": true, "u8": true, "u16": true, "u32": true, "u64": true, "b": true, "c": true}

// BLDS returns the schema string "name:type;name:type[N];…" (no offsets).
func (s *Schema) BLDS() string {
	var sb strings.Builder
	for i, f := range s.Fields {
		if i > 0 {
			sb.WriteByte(';')
		}
		sb.WriteString(f.Name)
		sb.WriteByte(':')
		sb.WriteString(f.Type)
		if f.Len > 0 {
			sb.WriteString("[" + strconv.Itoa(f.Len) + "]")
		}
	}
	return sb.String()
}

// Hash returns BLAKE2b-256 of the BLDS string (§12.2).
func (s *Schema) Hash() [32]byte { return blake2b.Sum256([]byte(s.BLDS())) }

// PackedVersion packs the version as major(10)|minor(10)|patch(12) bits (§12.3).
func (s *Schema) PackedVersion() uint32 {
	return uint32(s.Major&0x3FF)<<22 | uint32(s.Minor&0x3FF)<<12 | uint32(s.Patch&0xFFF)
}

// validate checks names and type ids.
func (s *Schema) validate() error {
	for _, f := range s.Fields {
		if f.Name == "" || strings.ContainsAny(f.Name, ":;@[]") || !bldsTypes[f.Type] || f.Len < 0 {
			return fmt.Errorf("%w: schema %q field %+v", ErrInvalidConfig, s.Name, f)
		}
	}
	return nil
}

// SchemaOf derives the schema of the plain struct T by reflection, version 1.0.0.
// Field names come from the `blds:"name"` tag, else the Go field name; the tag may
// override the type id after a comma (`blds:"label,c"` for a char array). Nested
// structs are not supported (as in the original).
func SchemaOf[T any]() (*Schema, error) {
	t := typeOf[T]()
	if err := checkPlain(t); err != nil {
		return nil, err
	}
	s := &Schema{Name: t.Name(), Major: 1}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: %s is not a struct", ErrNotPlain, t)
	}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Name == "_" {
			continue
		}
		name, typ := sf.Name, ""
		if tag, ok := sf.Tag.Lookup("blds"); ok {
			n, ty, _ := strings.Cut(tag, ",")
			if n != "" {
				name = n
			}
			typ = ty
		}
		ft, n := sf.Type, 0
		if ft.Kind() == reflect.Array {
			n = ft.Len()
			ft = ft.Elem()
		}
		if typ == "" {
			typ = bldsID(ft.Kind())
		}
		if typ == "" {
			return nil, fmt.Errorf("%w: field %s.%s of kind %s has no BLDS type", ErrNotPlain, t, sf.Name, ft.Kind())
		}
		s.Fields = append(s.Fields, Field{Name: name, Type: typ, Len: n})
	}
	return s, s.validate()
}

func bldsID(k reflect.Kind) string {
	switch k {
	case reflect.Float32:
		return "f32"
	case reflect.Float64:
		return "f64"
	case reflect.Int8:
		return "i8"
	case reflect.Int16:
		return "i16"
	case reflect.Int32:
		return "i32"
	case reflect.Int64:
		return "i64"
	case reflect.Uint8:
		return "u8"
	case reflect.Uint16:
		return "u16"
	case reflect.Uint32:
		return "u32"
	case reflect.Uint64:
		return "u64"
	case reflect.Bool:
		return "b"
	}
	return ""
}

// checkPlain reports whether t is fixed-size data without pointers.
func checkPlain(t reflect.Type) error {
	switch t.Kind() {
	case reflect.Bool, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return nil
	case reflect.Array:
		return checkPlain(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if err := checkPlain(t.Field(i).Type); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%w: %s (kind %s)", ErrNotPlain, t, t.Kind())
}
