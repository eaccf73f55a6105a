package main

import (
	"fmt"
	"slices"
)

// sample is one figure's values over the rounds.
type sample []float64

func (s sample) minMedMax() (lo, med, hi float64) {
	if len(s) == 0 {
		return 0, 0, 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	return c[0], c[len(c)/2], c[len(c)-1]
}

// format prints v in unit.
func format(v float64, unit string) string {
	switch unit {
	case "/s":
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.2fM/s", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.1fk/s", v/1e3)
		}
		return fmt.Sprintf("%.0f/s", v)
	case "x":
		return fmt.Sprintf("%.2fx", v)
	}
	return fmt.Sprintf("%.3g%s", v, unit)
}
