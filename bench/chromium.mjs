// Headless Chromium for the browser benchmarks: a fresh persistent profile (its own IndexedDB),
// flags that keep background work out of the timings.
import { chromium } from 'playwright-core'

export function launchChromium (profileDir) {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: process.env.YKEEP_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']
  })
}
