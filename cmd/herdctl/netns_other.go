//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
)

const netnsEnv = "HERDCTL_IN_NETNS"

var errNoNetns = errors.New("--netns: network namespaces are Linux only")

func rerunInNetns(context.Context, io.Writer, io.Writer) error { return errNoNetns }

func loopbackUp() error { return errNoNetns }
