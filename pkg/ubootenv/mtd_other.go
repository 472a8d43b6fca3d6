//go:build !linux

package ubootenv

import (
	"errors"
	"os"
)

func openMTD(f *os.File) (Device, error) {
	return nil, errors.New("MTD devices are only supported on Linux")
}
