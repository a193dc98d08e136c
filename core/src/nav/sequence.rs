//! Re-sequencing the remaining stops on the device.
