package delivery

// NeedsSMTPUTF8 reports whether the sender or one of the recipients rcpts
// (indices into all) is not plain ASCII.
func NeedsSMTPUTF8(from string, all []string, rcpts []int) bool {
	if !isASCII(from) {
		return true
	}
	for _, r := range rcpts {
		if !isASCII(all[r]) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
