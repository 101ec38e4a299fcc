//! pcap and pcapng files, plain (mapped into memory) or gzip-compressed (streamed), parsed with
//! `pcap-parser`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::Mmap;
use pcap_parser::nom::{self, IResult};
use pcap_parser::pcap::{
    parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header, LegacyPcapBlock,
    PcapHeader,
};
use pcap_parser::pcapng::{parse_block_be, parse_block_le, parse_sectionheaderblock, Block};
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
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

/// A capture file opened for reading. A plain file is mapped into memory, so the frames handed
/// out are slices of the file itself (no copy, no read calls); a gzip file is decompressed as a
/// stream (serially: decompress it first when speed matters).
pub struct CaptureFile {
    path: PathBuf,
    source: Source,
}

enum Source {
    Mapped(Arc<Mmap>),
    /// gzip, or not a regular file (a pipe): read as a stream.
    Stream(File),
}

impl CaptureFile {
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let open_err = |source| CaptureError::Open { path: path.into(), source };
        let mut file = File::open(path).map_err(open_err)?;
        if !file.metadata().map_err(open_err)?.is_file() {
            return Ok(CaptureFile { path: path.into(), source: Source::Stream(file) });
        }
        let mut magic = [0u8; 2];
        let gzip = match file.read_exact(&mut magic) {
            Ok(()) => magic == [0x1f, 0x8b],
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
            Err(e) => return Err(open_err(e)),
        };
        if gzip {
            file.seek(SeekFrom::Start(0)).map_err(open_err)?;
            return Ok(CaptureFile { path: path.into(), source: Source::Stream(file) });
        }
        // SAFETY: the map is only read. Another process truncating the file while it is replayed
        // would fault the reader (SIGBUS), as it would any program mapping it; appending is
        // harmless (the map keeps the length it had). Documented in docs/design.md. Regular files
        // only (checked above): pipes and devices are streamed.
        let map = unsafe { Mmap::map(&file) }.map_err(open_err)?;
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(CaptureFile { path: path.into(), source: Source::Mapped(Arc::new(map)) })
    }

    /// The mapped file, when it is one: the frames `read` hands out are slices of it.
    pub fn mapped(&self) -> Option<&Arc<Mmap>> {
        match &self.source {
            Source::Mapped(m) => Some(m),
            Source::Stream(_) => None,
        }
    }

    /// Reads every frame, calling `on_frame` for each, in file order. Returns the number of
    /// frames read. `progress` counts bytes consumed from the file (compressed, for gzip).
    pub fn read(
        self,
        progress: Arc<AtomicU64>,
        on_frame: impl FnMut(Frame<'_>),
    ) -> Result<u64, CaptureError> {
        match self.source {
            Source::Stream(file) => read_from(&self.path, file, progress, on_frame),
            Source::Mapped(map) => read_bytes(&self.path, &map, progress, on_frame),
        }
    }
}

/// Reads every frame of `path`, calling `on_frame` for each, in file order. Returns the number of
/// frames read. `progress` counts compressed bytes consumed from the file.
pub fn read_file(
    path: &Path,
    progress: Arc<AtomicU64>,
    on_frame: impl FnMut(Frame<'_>),
) -> Result<u64, CaptureError> {
    CaptureFile::open(path)?.read(progress, on_frame)
}

/// [`read_file`] on any byte source (`path` only names it in errors): pcap or pcapng, plain or
/// gzip.
pub fn read_from<R: Read + Send + 'static>(
    path: &Path,
    input: R,
    progress: Arc<AtomicU64>,
    on_frame: impl FnMut(Frame<'_>),
) -> Result<u64, CaptureError> {
    let mut buffered = BufReader::with_capacity(1 << 16, Counting { inner: input, read: progress });
    let head = buffered.fill_buf().map_err(|source| CaptureError::Open { path: path.into(), source })?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let source: Box<dyn Read + Send> =
        if gzip { Box::new(flate2::read::MultiGzDecoder::new(buffered)) } else { Box::new(buffered) };
    let gz = if gzip { " of the decompressed data" } else { "" };

    let reader = match create_reader(1 << 20, source) {
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
    read_blocks(path, reader, gz, on_frame)
}

/// Reads a capture held in memory (a mapped file): plain pcap or pcapng; frames borrow from
/// `data`. `path` only names it in errors.
pub fn read_bytes(
    path: &Path,
    data: &[u8],
    progress: Arc<AtomicU64>,
    on_frame: impl FnMut(Frame<'_>),
) -> Result<u64, CaptureError> {
    let not_capture = || CaptureError::NotCapture { path: path.into() };
    let format = if data.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        parse_sectionheaderblock(data).map_err(|_| not_capture())?;
        SliceFormat::Ng { big_endian: false }
    } else {
        let (_, header) = parse_pcap_header(data).map_err(|_| not_capture())?;
        let parse = if header.is_modified_format() {
            parse_pcap_frame_modified
        } else if header.is_bigendian() {
            parse_pcap_frame_be
        } else {
            parse_pcap_frame
        };
        SliceFormat::Legacy { header, parse }
    };
    read_blocks(
        path,
        Box::new(SliceReader { data, consumed: 0, format, progress, unreported: 0 }),
        "",
        on_frame,
    )
}

/// Mapped pages are given back in steps of at least this many bytes ([`release`]).
pub const RELEASE_STEP: usize = 32 << 20;
const PAGE: usize = 4096;

/// Gives the pages of `map` before byte `upto` back to the kernel (they stay in the page cache),
/// from `*released` on, once at least [`RELEASE_STEP`] bytes can go; advances `*released`. The
/// caller says how far no reader needs the bytes any more; one that still did would fault the
/// pages back in from the file, unchanged.
pub fn release(map: &Mmap, released: &mut usize, upto: usize) {
    let upto = upto.min(map.len()) & !(PAGE - 1);
    if upto < released.saturating_add(RELEASE_STEP) {
        return;
    }
    // SAFETY: the map is a read-only mapping of a file: MADV_DONTNEED drops the pages from this
    // process, and reading them again refills them from the file unchanged. `*released` and
    // `upto` are page-aligned offsets within the map.
    let _ = unsafe {
        map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, *released, upto - *released)
    };
    *released = upto;
}

type FrameParser = fn(&[u8]) -> IResult<&[u8], LegacyPcapBlock<'_>, PcapError<&[u8]>>;

enum SliceFormat {
    Legacy { header: PcapHeader, parse: FrameParser },
    Ng { big_endian: bool },
}

/// pcap-parser's own block parsers over a capture in memory, in the shape of its streaming
/// readers (so one loop reads both): blocks borrow from the file's bytes.
struct SliceReader<'a> {
    data: &'a [u8],
    consumed: usize,
    format: SliceFormat,
    progress: Arc<AtomicU64>,
    /// Bytes consumed not yet added to `progress` (added per MiB, not per frame).
    unreported: usize,
}

impl PcapReaderIterator for SliceReader<'_> {
    fn next(&mut self) -> Result<(usize, PcapBlockOwned<'_>), PcapError<&[u8]>> {
        let rest = &self.data[self.consumed.min(self.data.len())..];
        if let SliceFormat::Legacy { header, .. } = &self.format {
            if self.consumed == 0 {
                return Ok((header.size(), PcapBlockOwned::from(header.clone())));
            }
        }
        if rest.is_empty() {
            self.progress.fetch_add(std::mem::take(&mut self.unreported) as u64, Ordering::Relaxed);
            return Err(PcapError::Eof);
        }
        let parsed = match &mut self.format {
            SliceFormat::Legacy { parse, .. } => parse(rest).map(|(rem, b)| (rem, PcapBlockOwned::from(b))),
            SliceFormat::Ng { big_endian } => {
                let parse = if *big_endian { parse_block_be } else { parse_block_le };
                parse(rest).map(|(rem, b)| {
                    if let Block::SectionHeader(shb) = &b {
                        *big_endian = shb.big_endian();
                    }
                    (rem, PcapBlockOwned::from(b))
                })
            }
        };
        match parsed {
            Ok((rem, block)) => Ok((rest.len() - rem.len(), block)),
            Err(nom::Err::Error(e)) | Err(nom::Err::Failure(e)) => Err(e),
            // The whole file is here: needing more means it ends inside a record.
            Err(nom::Err::Incomplete(_)) => Err(PcapError::UnexpectedEof),
        }
    }
    fn consume(&mut self, offset: usize) {
        self.consume_noshift(offset);
    }
    fn consume_noshift(&mut self, offset: usize) {
        self.consumed += offset;
        self.unreported += offset;
        if self.unreported >= 1 << 20 {
            self.progress.fetch_add(std::mem::take(&mut self.unreported) as u64, Ordering::Relaxed);
        }
    }
    fn consumed(&self) -> usize {
        self.consumed
    }
    fn refill(&mut self) -> Result<(), PcapError<&[u8]>> {
        Ok(())
    }
    fn position(&self) -> usize {
        self.consumed
    }
    fn grow(&mut self, _new_size: usize) -> bool {
        false
    }
    fn data(&self) -> &[u8] {
        &self.data[self.consumed.min(self.data.len())..]
    }
    fn reader_exhausted(&self) -> bool {
        true
    }
}

/// The block loop both readers share: frames to `on_frame`, damage reported with its offset.
fn read_blocks<'r>(
    path: &Path,
    mut reader: Box<dyn PcapReaderIterator + 'r>,
    gz: &'static str,
    mut on_frame: impl FnMut(Frame<'_>),
) -> Result<u64, CaptureError> {
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
    fn devices_and_pipes_are_streamed_not_mapped() {
        let f = CaptureFile::open(Path::new("/dev/null")).expect("a device opens");
        assert!(f.mapped().is_none());
        // Empty input read as a stream: not a capture (no seek or map error).
        let r = f.read(Arc::new(AtomicU64::new(0)), |_| {});
        assert!(matches!(r, Err(CaptureError::NotCapture { .. })), "{r:?}");
    }

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
