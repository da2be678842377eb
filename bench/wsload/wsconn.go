package main

// A minimal RFC 6455 client: the handshake, unmasked server frames (continuations joined,
// pings answered), masked client text frames. Only the standard library, and no allocation
// per message once a connection's buffer has grown to its largest message.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"time"
)

const (
	opContinuation = 0x0
	opText         = 0x1
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

type wsConn struct {
	conn    net.Conn
	reader  *bufio.Reader
	message []byte // the message being read, reused
	writing sync.Mutex
}

func dial(rawURL string, timeout time.Duration) (*wsConn, error) {
	target, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", target.Host, timeout)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	request := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		target.RequestURI(), target.Host, base64.StdEncoding.EncodeToString(key))
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, request); err != nil {
		conn.Close()
		return nil, err
	}
	reader := bufio.NewReaderSize(conn, 4096)
	status, err := reader.ReadSlice('\n')
	if err != nil || !bytes.HasPrefix(status, []byte("HTTP/1.1 101")) {
		conn.Close()
		return nil, fmt.Errorf("handshake refused: %q %v", status, err)
	}
	for { // the rest of the response head
		line, err := reader.ReadSlice('\n')
		if err != nil {
			conn.Close()
			return nil, err
		}
		if len(line) <= 2 {
			break
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return &wsConn{conn: conn, reader: reader}, nil
}

// next returns the next text message (valid until the following call); control frames are
// handled on the way. io.EOF once the server closed.
func (c *wsConn) next() ([]byte, error) {
	c.message = c.message[:0]
	for {
		head0, err := c.reader.ReadByte()
		if err != nil {
			return nil, err
		}
		head1, err := c.reader.ReadByte()
		if err != nil {
			return nil, err
		}
		size, err := c.payloadSize(head1 & 0x7F)
		if err != nil {
			return nil, err
		}
		opcode, final := head0&0x0F, head0&0x80 != 0
		if opcode >= opClose { // control frames come whole, between fragments
			if err := c.control(opcode, size); err != nil {
				return nil, err
			}
			continue
		}
		start := len(c.message)
		if cap(c.message) < start+size {
			grown := make([]byte, start, 2*(start+size))
			copy(grown, c.message)
			c.message = grown
		}
		c.message = c.message[:start+size]
		if _, err := io.ReadFull(c.reader, c.message[start:]); err != nil {
			return nil, err
		}
		if final && (opcode == opText || opcode == opContinuation) {
			return c.message, nil
		}
	}
}

func (c *wsConn) payloadSize(short byte) (int, error) {
	var extended [8]byte
	switch short {
	case 126:
		if _, err := io.ReadFull(c.reader, extended[:2]); err != nil {
			return 0, err
		}
		return int(binary.BigEndian.Uint16(extended[:2])), nil
	case 127:
		if _, err := io.ReadFull(c.reader, extended[:]); err != nil {
			return 0, err
		}
		return int(binary.BigEndian.Uint64(extended[:])), nil
	}
	return int(short), nil
}

func (c *wsConn) control(opcode byte, size int) error {
	payload := make([]byte, size)
	if _, err := io.ReadFull(c.reader, payload); err != nil {
		return err
	}
	switch opcode {
	case opClose:
		_ = c.write(opClose, payload)
		return io.EOF
	case opPing:
		return c.write(opPong, payload)
	}
	return nil
}

// write sends one masked frame (clients must mask).
func (c *wsConn) write(opcode byte, payload []byte) error {
	if len(payload) > 65535 {
		return errors.New("client frames are small")
	}
	frame := make([]byte, 0, len(payload)+8)
	frame = append(frame, 0x80|opcode)
	if len(payload) < 126 {
		frame = append(frame, 0x80|byte(len(payload)))
	} else {
		frame = append(frame, 0x80|126, byte(len(payload)>>8), byte(len(payload)))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	c.writing.Lock()
	defer c.writing.Unlock()
	_, err := c.conn.Write(frame)
	return err
}

func (c *wsConn) close() { c.conn.Close() }
