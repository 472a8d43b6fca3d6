package smalljson_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/internal/smalljson"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/sandbox"
)

// lowerRecord mirrors bootinit's DIR/lower.json record (unexported there).
type lowerRecord struct {
	Version int    `json:"version"`
	Root    string `json:"root"`
	Marker  string `json:"marker"`
	Device  string `json:"device,omitempty"`
	MadeAt  string `json:"made_at,omitempty"`
	MadeBy  string `json:"made_by,omitempty"`
}

// nasty are strings that exercise every escaping rule.
var nasty = []string{"", "plain", "quote \" back \\ slash", "<html> & </html>", "\x00\x01\b\f\n\r\t\x1f\x7f", "é ü 日本 🙂",
	"bad \xff utf8 \xc3", "line\u2028sep\u2029", "\ufffd", "/dev/vda1", "a\"b"}

var floats = []float64{0, 1, -1, 0.5, 0.123456, 1e-6, 9.99e-7, 1e-7, 123456789, 1e20, 1e21, 1.5e300, -2.5e-10, math.SmallestNonzeroFloat64, math.MaxFloat64, 0.000001234}

// fill sets every field reachable from v to random values: strings from
// nasty, numbers across their range, slices nil, empty or full, pointers
// nil or set, so that omitempty and null both show.
func fill(v reflect.Value, r *rand.Rand) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(nasty[r.IntN(len(nasty))])
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int64, reflect.Int32:
		if r.IntN(3) > 0 {
			v.SetInt(int64(r.Uint64()) >> r.IntN(64) >> (64 - v.Type().Bits()))
		}
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		if r.IntN(3) > 0 {
			v.SetUint(r.Uint64() >> r.IntN(64) >> (64 - v.Type().Bits()))
		}
	case reflect.Float64:
		v.SetFloat(floats[r.IntN(len(floats))] * float64(1-2*r.IntN(2)))
	case reflect.Pointer:
		if r.IntN(4) > 0 {
			v.Set(reflect.New(v.Type().Elem()))
			fill(v.Elem(), r)
		}
	case reflect.Slice:
		switch r.IntN(4) {
		case 0: // nil
		case 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			n := 1 + r.IntN(3)
			v.Set(reflect.MakeSlice(v.Type(), n, n))
			for i := range n {
				fill(v.Index(i), r)
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), r)
			}
		}
	default:
		panic("fill: " + v.Type().String())
	}
}

// records are the types the init encodes and decodes.
func records() []func() any {
	return []func() any{
		func() any { return new(bootstatus.Status) },
		func() any { return new(sandbox.Config) },
		func() any { return new(lowerRecord) },
	}
}

// The same bytes as encoding/json, compact and indented, over every
// field of every record, many times over, and the same values back.
func TestSameAsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for _, mk := range records() {
		for range 300 {
			v := mk()
			fill(reflect.ValueOf(v).Elem(), r)
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := smalljson.Marshal(v)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%T: Marshal\n got %s (%v)\nwant %s", v, got, err, want)
			}
			wantI, _ := json.MarshalIndent(v, "", "  ")
			gotI, err := smalljson.MarshalIndent(v, "", "  ")
			if err != nil || !bytes.Equal(gotI, wantI) {
				t.Fatalf("%T: MarshalIndent\n got %s (%v)\nwant %s", v, gotI, err, wantI)
			}
			back, std := mk(), mk()
			if err := smalljson.Unmarshal(wantI, back); err != nil {
				t.Fatalf("%T: Unmarshal of %s: %v", v, wantI, err)
			}
			json.Unmarshal(wantI, std)
			if !reflect.DeepEqual(back, std) {
				t.Fatalf("%T: decoded\n got %+v\nwant %+v", v, back, std)
			}
		}
	}
}

// A fully populated Status survives the round trip exactly (no nil,
// no empty string, no special float), so nothing is lost or renamed.
func TestStatusRoundTrip(t *testing.T) {
	var s bootstatus.Status
	var full func(v reflect.Value)
	n := 0
	full = func(v reflect.Value) {
		n++
		switch v.Kind() {
		case reflect.String:
			v.SetString("s" + strings.Repeat("x", n%5) + "<&>")
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Int, reflect.Int64, reflect.Int32:
			v.SetInt(int64(n))
		case reflect.Uint, reflect.Uint64, reflect.Uint32:
			v.SetUint(uint64(n) << 20)
		case reflect.Float64:
			v.SetFloat(float64(n) + 0.25)
		case reflect.Pointer:
			v.Set(reflect.New(v.Type().Elem()))
			full(v.Elem())
		case reflect.Slice:
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
			full(v.Index(0))
			full(v.Index(1))
		case reflect.Struct:
			for i := range v.NumField() {
				full(v.Field(i))
			}
		}
	}
	full(reflect.ValueOf(&s).Elem())
	var buf bytes.Buffer
	if err := bootstatus.Write(&buf, &s); err != nil {
		t.Fatal(err)
	}
	want, _ := json.MarshalIndent(&s, "", "  ")
	if !bytes.Equal(buf.Bytes(), append(want, '\n')) {
		t.Errorf("bootstatus.Write\n got %s\nwant %s", buf.Bytes(), want)
	}
	var std bootstatus.Status
	if err := json.Unmarshal(buf.Bytes(), &std); err != nil || !reflect.DeepEqual(std, s) {
		t.Errorf("encoding/json reads back %+v, %v", std, err)
	}
	got, err := bootstatus.Read(&buf)
	if err != nil || !reflect.DeepEqual(*got, s) {
		t.Errorf("bootstatus.Read: %+v, %v", got, err)
	}
}

// Decoding corner cases, each against encoding/json: the same error-or-
// not, and the same value.
func TestUnmarshalLikeEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"version":1,"root":"UUID=x","marker":"m"}`,
		` {"VERSION":2,"Root":"r","MARKER":"m","extra":[1,{"a":[]}],"made_at":null} `,
		`{"version":1.5}`, `{"version":"1"}`, `{"version":1e2}`, `{"version":-0}`, `{"version":99999999999999999999}`,
		`{"root":"\u00e9\ud83d\ude42\ud800x\\\/\"\b\f\n\r\t"}`, `{"root":"a","root":"b"}`, `{"root":null}`, `{"root":5,"marker":"still"}`,
		`{}`, `[]`, `null`, `"x"`, `{"version":1}x`, `{"version":1,}`, `{"version":01}`, `{"version":-}`, `{"version":.5}`,
		`{"version":1.}`, `{"version":1e}`, `{'version':1}`, `{"version" 1}`, `{"root":"tab	in"}`, `{"root":"\x"}`, `{"root":"\u12"}`,
		"{\"root\":\"bad \xff\"}", `{"version":true}`, `{"version":[]}`, `{"version":{}}`, ``, ` `, `nul`, `{"a":tru}`,
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001), `{"made_by":"x"}  `, `{"ſ":1}`,
	} {
		var got, want lowerRecord
		gerr := smalljson.Unmarshal([]byte(in), &got)
		werr := json.Unmarshal([]byte(in), &want)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%.60q: got %+v (%v), encoding/json %+v (%v)", in, got, gerr, want, werr)
		}
	}
	// Status: nested pointers, slices merged as encoding/json does.
	for _, in := range []string{
		`{"ram":{"mount":"a"},"ram":{"size_bytes":1}}`, `{"steps":[{"name":"a","seconds":1}],"steps":[{"seconds":2}]}`,
		`{"steps":[]}`, `{"steps":null}`, `{"ram":null}`, `{"steps":[null,{"name":"x"}]}`, `{"init_args":["a",null,"b"]}`,
		`{"started_at":1e400}`, `{"upper":{"zram":{"disksize_bytes":-1}}}`, `{"root":"x"}`, `{"mode":"protected","steps":[1]}`,
	} {
		var got, want bootstatus.Status
		gerr := smalljson.Unmarshal([]byte(in), &got)
		werr := json.Unmarshal([]byte(in), &want)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %+v (%v), encoding/json %+v (%v)", in, got, gerr, want, werr)
		}
	}
}

// What smalljson does not cover is an error, not a different encoding.
func TestUnsupported(t *testing.T) {
	for _, v := range []any{map[string]int{"a": 1}, []byte("x"), struct{ A any }{1}, [2]int{}, math.NaN(), math.Inf(1),
		struct{ bootstatus.Root }{}} {
		if b, err := smalljson.Marshal(v); err == nil {
			t.Errorf("%T: %s, want an error", v, b)
		}
	}
}

// FuzzUnmarshal: any input decodes as encoding/json decodes it, into
// every record type, or fails where it fails; never a panic.
func FuzzUnmarshal(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, mk := range records() {
		v := mk()
		fill(reflect.ValueOf(v).Elem(), r)
		b, _ := json.MarshalIndent(v, "", "  ")
		f.Add(b)
	}
	f.Add([]byte(`{"root":"\ud800\udc00\u0041","version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mk := range records() {
			got, want := mk(), mk()
			gerr := smalljson.Unmarshal(data, got)
			werr := json.Unmarshal(data, want)
			if (gerr == nil) != (werr == nil) {
				t.Fatalf("%T: smalljson %v, encoding/json %v", got, gerr, werr)
			}
			if werr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%T:\n got %+v\nwant %+v", got, got, want)
			}
		}
	})
}
