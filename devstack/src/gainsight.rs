//! Gainsight emulator.
