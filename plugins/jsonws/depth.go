package jsonws

// nestingDepth returns how deeply b nests arrays and objects, or limit+1
// as soon as it nests deeper than limit. It counts brackets outside
// strings in one pass, without recursion or allocation, so it can run
// before gjson: gjson's validator recurses once per level, and a frame of
// a few MiB of `[` would need gigabytes of stack, which kills the process
// (a stack overflow is fatal, not a panic).
//
// It does not validate. A closing bracket never takes the count below
// zero, so for any input the result is at least the nesting a parser
// reaches before it finds b invalid: within a valid prefix the brackets
// balance, and strings and escapes are what a parser takes them to be.
func nestingDepth(b []byte, limit int) int {
	depth, deepest := 0, 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > limit {
					return limit + 1
				}
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return deepest
}

// tooDeep reports whether b nests arrays and objects deeper than limit.
func tooDeep(b []byte, limit int) bool { return nestingDepth(b, limit) > limit }
