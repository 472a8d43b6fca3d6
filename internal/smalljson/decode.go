package smalljson

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// SyntaxError is malformed JSON, at byte Offset.
type SyntaxError struct {
	Msg    string
	Offset int
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// Unmarshal decodes the one JSON value in data (whitespace around it
// allowed) into v, a non-nil pointer, as json.Unmarshal does: the whole
// input is checked first, and a value of the wrong type for a field is an
// error after the rest has been decoded.
func Unmarshal(data []byte, v any) error {
	end, err := scan(data, 0)
	if err != nil {
		return err
	}
	if end = skipSpace(data, end); end != len(data) {
		return &SyntaxError{"data after the top-level value", end}
	}
	return decodeInto(data, v)
}

// DecodeFirst decodes the first JSON value of data into v and ignores
// what follows it, as a json.Decoder's first Decode does.
func DecodeFirst(data []byte, v any) error {
	end, err := scan(data, 0)
	if err != nil {
		return err
	}
	return decodeInto(data[:end], v)
}

func decodeInto(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("smalljson: Unmarshal needs a non-nil pointer, not %T", v)
	}
	d := decoder{data: data}
	d.pos = skipSpace(data, 0)
	if err := d.value(rv.Elem()); err != nil {
		return err
	}
	return d.typeErr
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scan checks the JSON value starting at or after i and returns where it
// ends. It allocates nothing and recurses no deeper than maxDepth.
func scan(b []byte, i int) (int, error) {
	depth := 0
	// expect: a value; then after each value, what may follow depends
	// on the enclosing containers, kept as a stack of '[' and '{'.
	var stack []byte
	i = skipSpace(b, i)
	for {
		// A value.
		if i >= len(b) {
			return i, &SyntaxError{"unexpected end of input", i}
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			depth++
			if depth > maxDepth {
				return i, &SyntaxError{"nested too deeply", i}
			}
			stack = append(stack, c)
			i = skipSpace(b, i+1)
			if i < len(b) && (c == '{' && b[i] == '}' || c == '[' && b[i] == ']') {
				stack = stack[:len(stack)-1]
				depth--
				i++
				break
			}
			if c == '{' {
				var err error
				if i, err = scanKey(b, i); err != nil {
					return i, err
				}
			}
			continue
		case c == '"':
			end, err := scanString(b, i)
			if err != nil {
				return end, err
			}
			i = end
		case c == '-' || '0' <= c && c <= '9':
			end, err := scanNumber(b, i)
			if err != nil {
				return end, err
			}
			i = end
		case hasWord(b, i, "true"):
			i += 4
		case hasWord(b, i, "false"):
			i += 5
		case hasWord(b, i, "null"):
			i += 4
		default:
			return i, &SyntaxError{fmt.Sprintf("unexpected %q looking for a value", c), i}
		}
		// After a value: close containers or go on to the next item.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, &SyntaxError{"unexpected end of input", i}
			}
			top := stack[len(stack)-1]
			if b[i] == ',' {
				i = skipSpace(b, i+1)
				if top == '{' {
					var err error
					if i, err = scanKey(b, i); err != nil {
						return i, err
					}
				}
				break
			}
			if top == '{' && b[i] == '}' || top == '[' && b[i] == ']' {
				stack = stack[:len(stack)-1]
				depth--
				i++
				continue
			}
			return i, &SyntaxError{fmt.Sprintf("unexpected %q after a value", b[i]), i}
		}
	}
}

// scanKey checks `"key" :` at i and returns where the value starts.
func scanKey(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return i, &SyntaxError{"expected a string key", i}
	}
	end, err := scanString(b, i)
	if err != nil {
		return end, err
	}
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		return i, &SyntaxError{"expected ':' after a key", i}
	}
	return skipSpace(b, i+1), nil
}

func hasWord(b []byte, i int, w string) bool {
	return len(b)-i >= len(w) && string(b[i:i+len(w)]) == w
}

// scanString checks the string starting with the quote at i and returns
// the index after its closing quote.
func scanString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return i, &SyntaxError{"control character in a string", i}
		case c == '\\':
			i++
			if i >= len(b) {
				return i, &SyntaxError{"unexpected end of input", i}
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return i, &SyntaxError{"short \\u escape", i}
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return i, &SyntaxError{"bad \\u escape", i}
					}
				}
				i += 4
			default:
				return i, &SyntaxError{"bad escape", i}
			}
		}
	}
	return i, &SyntaxError{"unexpected end of input", i}
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// scanNumber checks the number at i (JSON grammar) and returns its end.
func scanNumber(b []byte, i int) (int, error) {
	start := i
	digits := func() bool {
		n := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > n
	}
	if b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if !digits() {
		return i, &SyntaxError{"bad number", start}
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return i, &SyntaxError{"bad number", start}
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return i, &SyntaxError{"bad number", start}
		}
	}
	return i, nil
}

// decoder assigns a checked JSON value to Go values.
type decoder struct {
	data    []byte
	pos     int
	typeErr error // the first value of the wrong type
}

// UnmarshalTypeError is a JSON value that does not fit the Go value.
type UnmarshalTypeError struct {
	Value  string // "string", "number 1.5", "bool", "array", "object"
	Type   reflect.Type
	Offset int
}

func (e *UnmarshalTypeError) Error() string {
	return fmt.Sprintf("cannot put JSON %s into a Go value of type %s (byte %d)", e.Value, e.Type, e.Offset)
}

func (d *decoder) mismatch(what string, t reflect.Type, off int) {
	if d.typeErr == nil {
		d.typeErr = &UnmarshalTypeError{what, t, off}
	}
}

// skip passes over the (checked) value at d.pos.
func (d *decoder) skip() {
	end, _ := scan(d.data, d.pos)
	d.pos = skipSpace(d.data, end)
}

func (d *decoder) value(v reflect.Value) error {
	start := d.pos
	c := d.data[start]
	if c == 'n' { // null: pointers and slices become nil, the rest stays
		d.pos = skipSpace(d.data, start+4)
		switch v.Kind() {
		case reflect.Pointer, reflect.Slice:
			v.SetZero()
		}
		return nil
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.value(v.Elem())
	}
	switch c {
	case '{':
		if v.Kind() != reflect.Struct {
			d.mismatch("object", v.Type(), start)
			d.skip()
			return nil
		}
		return d.object(v)
	case '[':
		if v.Kind() != reflect.Slice {
			d.mismatch("array", v.Type(), start)
			d.skip()
			return nil
		}
		return d.array(v)
	case '"':
		end, _ := scanString(d.data, start)
		d.pos = skipSpace(d.data, end)
		if v.Kind() != reflect.String {
			d.mismatch("string", v.Type(), start)
			return nil
		}
		v.SetString(unquote(d.data[start+1 : end-1]))
	case 't', 'f':
		n := 4
		if c == 'f' {
			n = 5
		}
		d.pos = skipSpace(d.data, start+n)
		if v.Kind() != reflect.Bool {
			d.mismatch("bool", v.Type(), start)
			return nil
		}
		v.SetBool(c == 't')
	default:
		end, _ := scanNumber(d.data, start)
		d.pos = skipSpace(d.data, end)
		d.number(v, string(d.data[start:end]), start)
	}
	return nil
}

func (d *decoder) number(v reflect.Value, s string, off int) {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v.OverflowInt(n) {
			d.mismatch("number "+s, v.Type(), off)
			return
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v.OverflowUint(n) {
			d.mismatch("number "+s, v.Type(), off)
			return
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil || v.OverflowFloat(n) {
			d.mismatch("number "+s, v.Type(), off)
			return
		}
		v.SetFloat(n)
	default:
		d.mismatch("number", v.Type(), off)
	}
}

func (d *decoder) array(v reflect.Value) error {
	if v.Type().Elem().Kind() == reflect.Uint8 {
		return fmt.Errorf("smalljson: %s (base64) is not supported", v.Type())
	}
	d.pos = skipSpace(d.data, d.pos+1)
	i := 0
	for d.data[d.pos] != ']' {
		if i >= v.Cap() {
			v.Grow(1)
		}
		if i >= v.Len() {
			v.SetLen(i + 1)
		}
		if err := d.value(v.Index(i)); err != nil {
			return err
		}
		i++
		if d.data[d.pos] == ',' {
			d.pos = skipSpace(d.data, d.pos+1)
		}
	}
	d.pos = skipSpace(d.data, d.pos+1)
	if i < v.Len() {
		v.SetLen(i)
	}
	if i == 0 && v.IsNil() {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	return nil
}

func (d *decoder) object(v reflect.Value) error {
	fs, err := fields(v.Type())
	if err != nil {
		return err
	}
	d.pos = skipSpace(d.data, d.pos+1)
	for d.data[d.pos] != '}' {
		end, _ := scanString(d.data, d.pos)
		key := unquote(d.data[d.pos+1 : end-1])
		d.pos = skipSpace(d.data, end)
		d.pos = skipSpace(d.data, d.pos+1) // ':'
		f := -1
		for i := range fs {
			if fs[i].name == key {
				f = i
				break
			}
		}
		if f < 0 {
			for i := range fs {
				if strings.EqualFold(fs[i].name, key) {
					f = i
					break
				}
			}
		}
		if f < 0 {
			d.skip()
		} else if err := d.value(v.Field(fs[f].index)); err != nil {
			return err
		}
		if d.data[d.pos] == ',' {
			d.pos = skipSpace(d.data, d.pos+1)
		}
	}
	d.pos = skipSpace(d.data, d.pos+1)
	return nil
}

// unquote decodes the (checked) inside of a JSON string as encoding/json
// does: invalid UTF-8 and lone surrogates become U+FFFD.
func unquote(s []byte) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' {
			switch s[i+1] {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r := hex4(s[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if r2 := utf16.DecodeRune(r, hex4(s[i+2:])); r2 != utf8.RuneError {
							b.WriteRune(r2)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b.WriteRune(r)
				continue
			default: // " \ /
				b.WriteByte(s[i+1])
			}
			i += 2
			continue
		}
		if c < utf8.RuneSelf {
			b.WriteByte(c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.Write(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
