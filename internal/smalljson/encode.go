// Package smalljson encodes and decodes JSON for the init, which cannot
// afford encoding/json (0.36 MB of a 3.2 MB init, 0.15 MB gzipped). It
// covers what the init's records are made of: structs (with `json` tags:
// a name, "-", omitempty), pointers, slices, strings, booleans, integers
// and floats. For those it gives the bytes encoding/json gives
// (HTML-safe escaping, its float format, its indentation) and decodes
// what encoding/json decodes the way it does (case-insensitive field
// names, unknown fields ignored, null leaving non-pointers alone, values
// merged into what is there); the tests compare both on every field of
// the records and on random input. Anything else (maps, interfaces,
// arrays, embedded structs, Marshaler methods) is an error, never a
// silent difference.
package smalljson

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Marshal returns the JSON encoding of v, as json.Marshal does.
func Marshal(v any) ([]byte, error) {
	var e encoder
	if err := e.value(reflect.ValueOf(v)); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// MarshalIndent is Marshal with each element on its own line, as
// json.MarshalIndent does.
func MarshalIndent(v any, prefix, indent string) ([]byte, error) {
	e := encoder{prefix: prefix, indent: indent, pretty: true}
	if err := e.value(reflect.ValueOf(v)); err != nil {
		return nil, err
	}
	return e.buf, nil
}

type encoder struct {
	buf            []byte
	pretty         bool
	prefix, indent string
	depth          int
}

func (e *encoder) newline() {
	e.buf = append(e.buf, '\n')
	e.buf = append(e.buf, e.prefix...)
	for range e.depth {
		e.buf = append(e.buf, e.indent...)
	}
}

// field is one encoded field of a struct type.
type field struct {
	name      string
	index     int
	omitEmpty bool
}

var fieldCache sync.Map // reflect.Type -> []field or error

// fields returns the encoded fields of struct type t, in order.
func fields(t reflect.Type) ([]field, error) {
	if f, ok := fieldCache.Load(t); ok {
		if err, bad := f.(error); bad {
			return nil, err
		}
		return f.([]field), nil
	}
	var out []field
	var err error
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			err = fmt.Errorf("smalljson: embedded field %s in %s is not supported", sf.Name, t)
			break
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" || !validTag(name) {
			name = sf.Name
		}
		f := field{name: name, index: i}
		for opts != "" {
			var o string
			o, opts, _ = strings.Cut(opts, ",")
			switch o {
			case "omitempty":
				f.omitEmpty = true
			case "":
			default:
				err = fmt.Errorf("smalljson: tag option %q of %s.%s is not supported", o, t, sf.Name)
			}
		}
		if err != nil {
			break
		}
		for _, o := range out {
			if o.name == f.name {
				err = fmt.Errorf("smalljson: two fields of %s are called %q", t, f.name)
			}
		}
		out = append(out, f)
	}
	if err != nil {
		fieldCache.Store(t, err)
		return nil, err
	}
	fieldCache.Store(t, out)
	return out, nil
}

// validTag is encoding/json's isValidTag.
func validTag(s string) bool {
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return s != ""
}

func empty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String, reflect.Slice:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Pointer:
		return v.IsNil()
	}
	return false
}

var (
	jsonMarshaler = reflect.TypeFor[interface{ MarshalJSON() ([]byte, error) }]()
	textMarshaler = reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()
)

func (e *encoder) value(v reflect.Value) error {
	if !v.IsValid() {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	t := v.Type()
	if t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		reflect.PointerTo(t).Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		return fmt.Errorf("smalljson: %s has its own marshaling, which is not supported", t)
	}
	switch v.Kind() {
	case reflect.String:
		e.buf = appendString(e.buf, v.String())
	case reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		e.buf = strconv.AppendUint(e.buf, v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		bits := 64
		if v.Kind() == reflect.Float32 {
			bits = 32
		}
		b, err := appendFloat(e.buf, v.Float(), bits)
		if err != nil {
			return err
		}
		e.buf = b
	case reflect.Pointer:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.value(v.Elem())
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return fmt.Errorf("smalljson: %s (base64) is not supported", t)
		}
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		e.buf = append(e.buf, '[')
		n := v.Len()
		e.depth++
		for i := range n {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if e.pretty {
				e.newline()
			}
			if err := e.value(v.Index(i)); err != nil {
				return err
			}
		}
		e.depth--
		if e.pretty && n > 0 {
			e.newline()
		}
		e.buf = append(e.buf, ']')
	case reflect.Struct:
		fs, err := fields(t)
		if err != nil {
			return err
		}
		e.buf = append(e.buf, '{')
		e.depth++
		first := true
		for _, f := range fs {
			fv := v.Field(f.index)
			if f.omitEmpty && empty(fv) {
				continue
			}
			if !first {
				e.buf = append(e.buf, ',')
			}
			first = false
			if e.pretty {
				e.newline()
			}
			e.buf = appendString(e.buf, f.name)
			e.buf = append(e.buf, ':')
			if e.pretty {
				e.buf = append(e.buf, ' ')
			}
			if err := e.value(fv); err != nil {
				return err
			}
		}
		e.depth--
		if e.pretty && !first {
			e.newline()
		}
		e.buf = append(e.buf, '}')
	default:
		return fmt.Errorf("smalljson: %s is not supported", t)
	}
	return nil
}

// appendFloat is encoding/json's float format: the shortest form,
// exponents only outside [1e-6, 1e21), "e-07" written "e-7".
func appendFloat(b []byte, f float64, bits int) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, errors.New("smalljson: unsupported value: " + strconv.FormatFloat(f, 'g', -1, bits))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hex = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping on (its
// default): <, > and & as \u003c..., control characters escaped, invalid
// UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '\\' || c == '"':
				b = append(b, '\\', c)
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
