//! pcap and pcapng files, plain or gzip-compressed, read in a stream with `pcap-parser`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};

use super::Frame;
use crate::decode::LinkType;

/// Why a capture file could not be read (to the end).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a pcap or pcapng file")]
    NotCapture { path: PathBuf },
    #[error("{path}: {reason} at byte offset {offset}{gz} (the {frames} frames before it were processed)")]
    Corrupt { path: PathBuf, offset: u64, reason: String, frames: u64, gz: &'static str },
}

/// Counts bytes read from the underlying file, for progress reporting.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Per-interface link type and timestamp scale of a pcapng section.
#[derive(Clone, Copy)]
struct Interface {
    link: Option<LinkType>,
    linktype: i32,
    resolution: u64,
    offset: u64,
}

/// Reads every frame of `path`, calling `on_frame` for each, in file order. Returns the number of
/// frames read. `progress` counts compressed bytes consumed from the file.
pub fn read_file(
    path: &Path,
    progress: Arc<AtomicU64>,
    on_frame: impl FnMut(Frame<'_>),
) -> Result<u64, CaptureError> {
    let file = File::open(path).map_err(|source| CaptureError::Open { path: path.into(), source })?;
    read_from(path, file, progress, on_frame)
}

/// [`read_file`] on any byte source (`path` only names it in errors): pcap or pcapng, plain or
/// gzip.
pub fn read_from<R: Read + Send + 'static>(
    path: &Path,
    input: R,
    progress: Arc<AtomicU64>,
    mut on_frame: impl FnMut(Frame<'_>),
) -> Result<u64, CaptureError> {
    let mut buffered = BufReader::with_capacity(1 << 16, Counting { inner: input, read: progress });
    let head = buffered.fill_buf().map_err(|source| CaptureError::Open { path: path.into(), source })?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let source: Box<dyn Read + Send> =
        if gzip { Box::new(flate2::read::MultiGzDecoder::new(buffered)) } else { Box::new(buffered) };
    let gz = if gzip { " of the decompressed data" } else { "" };

    let mut reader = match create_reader(1 << 20, source) {
        Ok(r) => r,
        Err(PcapError::Eof) | Err(PcapError::HeaderNotRecognized) | Err(PcapError::Incomplete(_)) => {
            return Err(CaptureError::NotCapture { path: path.into() })
        }
        Err(e) => {
            return Err(CaptureError::Corrupt {
                path: path.into(),
                offset: 0,
                reason: e.to_string(),
                frames: 0,
                gz,
            })
        }
    };
    let mut frames = 0u64;
    let mut offset = 0u64;
    // Legacy pcap: one link type and timestamp precision for the file.
    let mut legacy: Option<(Option<LinkType>, i32, bool)> = None;
    let mut interfaces: Vec<Interface> = Vec::new();
    // Byte order of the current pcapng section, once its header block is read.
    let mut section_be: Option<bool> = None;
    loop {
        if let Some(be) = section_be {
            if let Some(reason) = invalid_block_length(reader.data(), be) {
                return Err(CaptureError::Corrupt { path: path.into(), offset, reason, frames, gz });
            }
        }
        match reader.next() {
            Ok((used, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        let lt = h.network.0;
                        legacy = Some((LinkType::from_pcap(lt), lt, h.is_nanosecond_precision()));
                    }
                    PcapBlockOwned::Legacy(b) => {
                        if let Some((link, linktype, nanos)) = legacy {
                            let frac = if nanos { b.ts_usec as u64 } else { b.ts_usec as u64 * 1000 };
                            let ts_ns = b.ts_sec as u64 * 1_000_000_000 + frac;
                            let len = (b.caplen as usize).min(b.data.len());
                            on_frame(Frame { ts_ns, link, linktype, data: &b.data[..len] });
                            frames += 1;
                        }
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                        interfaces.clear();
                        section_be = Some(shb.big_endian());
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let lt = idb.linktype.0;
                        interfaces.push(Interface {
                            link: LinkType::from_pcap(lt),
                            linktype: lt,
                            resolution: pcap_parser::build_ts_resolution(idb.if_tsresol).unwrap_or(1_000_000),
                            offset: idb.if_tsoffset.max(0) as u64,
                        });
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let iface = interfaces.get(epb.if_id as usize).copied();
                        let (link, linktype, res, off) = iface.map_or((None, -1, 1_000_000, 0), |i| {
                            (i.link, i.linktype, i.resolution, i.offset)
                        });
                        let (secs, frac) = epb.decode_ts(off, res);
                        let frac_ns = (frac as u128 * 1_000_000_000 / res.max(1) as u128) as u64;
                        let ts_ns = secs as u64 * 1_000_000_000 + frac_ns;
                        on_frame(Frame { ts_ns, link, linktype, data: epb.packet_data() });
                        frames += 1;
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        let iface = interfaces.first().copied();
                        let (link, linktype) = iface.map_or((None, -1), |i| (i.link, i.linktype));
                        on_frame(Frame { ts_ns: 0, link, linktype, data: spb.packet_data() });
                        frames += 1;
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                offset += used as u64;
                reader.consume(used);
            }
            Err(PcapError::Eof) => return Ok(frames),
            Err(PcapError::Incomplete(_)) => {
                if let Err(e) = reader.refill() {
                    return Err(CaptureError::Corrupt {
                        path: path.into(),
                        offset,
                        reason: e.to_string(),
                        frames,
                        gz,
                    });
                }
            }
            Err(e) => {
                let reason = match e {
                    PcapError::UnexpectedEof => "file ends in the middle of a packet record".to_string(),
                    PcapError::ReadError => "read error (truncated or corrupt compressed data?)".to_string(),
                    other => format!("invalid record ({other})"),
                };
                return Err(CaptureError::Corrupt { path: path.into(), offset, reason, frames, gz });
            }
        }
    }
}

/// A pcapng block (other than a section header) whose total length is below the 12 bytes every
/// block has. pcap-parser 0.17 subtracts 12 from it unchecked for some block types (the process
/// information block): that overflows, a panic with overflow checks on. Found by the
/// `capture_reader` fuzz target; the input is in fuzz/regressions/capture_reader/.
fn invalid_block_length(data: &[u8], big_endian: bool) -> Option<String> {
    let head: [u8; 8] = data.get(..8)?.try_into().ok()?;
    if head[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        return None; // a new section header: its own byte order, checked by the parser
    }
    let len = [head[4], head[5], head[6], head[7]];
    let len = if big_endian { u32::from_be_bytes(len) } else { u32::from_le_bytes(len) };
    (len < 12).then(|| format!("pcapng block of {len} bytes (every block has at least 12)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_pcapng_block_is_a_clear_error() {
        // Found by the capture_reader fuzz target: a process information block 4 bytes long.
        let input = include_bytes!(
            "../../../fuzz/regressions/capture_reader/crash-pcapng-short-process-information-block"
        );
        let r = read_from(Path::new("crash.pcapng"), &input[..], Arc::new(AtomicU64::new(0)), |_| {});
        match r {
            Err(CaptureError::Corrupt { reason, offset, .. }) => {
                assert!(reason.contains("pcapng block of"), "{reason}");
                assert!(offset > 0, "the section header before it was read");
            }
            other => panic!("expected a corrupt-file error, got {other:?}"),
        }
    }
}
