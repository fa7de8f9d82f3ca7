// keygen times RSA key generation the way the tls provider does it (crypto/rsa.GenerateKey with
// crypto/rand, built by the same Go), for the benchmark's key-generation floor.
//
//	keygen -bits 4096 -keys 11 -workers 2
//
// prints the wall time in seconds of generating -keys keys on -workers goroutines.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"
)

func main() {
	bits := flag.Int("bits", 4096, "RSA key size")
	keys := flag.Int("keys", 1, "keys to generate")
	workers := flag.Int("workers", 1, "goroutines generating them")
	flag.Parse()

	jobs := make(chan struct{}, *keys)
	for i := 0; i < *keys; i++ {
		jobs <- struct{}{}
	}
	close(jobs)
	started := time.Now()
	var group sync.WaitGroup
	failed := make(chan error, *workers)
	for w := 0; w < *workers; w++ {
		group.Add(1)
		go func() {
			defer group.Done()
			for range jobs {
				if _, err := rsa.GenerateKey(rand.Reader, *bits); err != nil {
					failed <- err
					return
				}
			}
		}()
	}
	group.Wait()
	close(failed)
	if err := <-failed; err != nil {
		fmt.Fprintln(os.Stderr, "keygen:", err)
		os.Exit(1)
	}
	fmt.Printf("%.3f\n", time.Since(started).Seconds())
}
