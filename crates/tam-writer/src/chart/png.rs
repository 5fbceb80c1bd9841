//! A PNG encoder for palette images: 8-bit indexed colour, one zlib stream of one DEFLATE
//! block with the fixed Huffman codes. Written here because a chart needs a few hundred lines,
//! not an image library and its dependency tree.
//!
//! Compression is LZ77 against two candidates only: the byte before (runs of one colour) and
//! the byte one row up (rows that repeat the row above). A chart is mostly both, so this gets
//! a 560x200 chart to a few KB without a hash chain or dynamic Huffman tables.

/// Longest DEFLATE match.
const MAX_MATCH: usize = 258;
/// Shortest match worth coding: a length and distance cost more than two literals.
const MIN_MATCH: usize = 3;
/// Farthest distance DEFLATE can refer to.
const MAX_DISTANCE: usize = 32_768;

/// Base length of length codes 257..=285, and their extra bits.
const LENGTH_BASE: [u16; 29] =
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
/// Base distance of distance codes 0..=29, and their extra bits.
const DISTANCE_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
    8193, 12289, 16385, 24577,
];
const DISTANCE_EXTRA: [u8; 30] =
    [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

/// An indexed-colour PNG of `width` x `height` pixels, each a `palette` index, row by row.
pub fn encode(width: u32, height: u32, palette: &[[u8; 3]], pixels: &[u8]) -> Vec<u8> {
    let stride = width as usize;
    debug_assert_eq!(pixels.len(), stride * height as usize);
    debug_assert!(!palette.is_empty() && palette.len() <= 256);
    // Filter type 0 on every row: the row-above match of the compressor does what the Up
    // filter would, and a palette image gains nothing from the arithmetic filters.
    let mut raw = Vec::with_capacity((stride + 1) * height as usize);
    for row in pixels.chunks(stride.max(1)) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 3 (palette), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 3, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"PLTE", &palette.concat());
    chunk(&mut out, b"IDAT", &zlib(&raw, stride + 1));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
}

/// CRC-32 (ISO 3309, as PNG and zip use it).
pub fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |c, &b| CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8))
}

/// Adler-32 (RFC 1950).
pub fn adler32(bytes: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that can be summed before `b` could overflow a u32.
    for block in bytes.chunks(5552) {
        for &byte in block {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// A zlib stream (RFC 1950) of `data`; `stride` is the distance of the second match candidate.
pub fn zlib(data: &[u8], stride: usize) -> Vec<u8> {
    // CMF 0x78: deflate, 32 KiB window. FLG 0x01: no dictionary, fastest level, and makes
    // CMF*256+FLG a multiple of 31.
    let mut out = vec![0x78, 0x01];
    out.extend_from_slice(&deflate(data, stride));
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// One final DEFLATE block (RFC 1951) with the fixed codes.
fn deflate(data: &[u8], stride: usize) -> Vec<u8> {
    let mut bits = BitWriter::default();
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE 01: fixed Huffman codes
    let mut i = 0;
    while i < data.len() {
        let (length, distance) = longest_match(data, i, stride);
        if length >= MIN_MATCH {
            put_length(&mut bits, length);
            put_distance(&mut bits, distance);
            i += length;
        } else {
            put_symbol(&mut bits, u16::from(data[i]));
            i += 1;
        }
    }
    put_symbol(&mut bits, 256);
    bits.finish()
}

fn longest_match(data: &[u8], at: usize, stride: usize) -> (usize, usize) {
    let limit = (data.len() - at).min(MAX_MATCH);
    let mut best = (0, 0);
    for distance in [1, stride] {
        if distance == 0 || distance > at || distance > MAX_DISTANCE {
            continue;
        }
        // Overlapping is allowed: at distance 1 this copies one byte forward, which is a run.
        let length = (0..limit).take_while(|&k| data[at + k] == data[at + k - distance]).count();
        if length > best.0 {
            best = (length, distance);
        }
    }
    best
}

/// A literal/length symbol in its fixed code (RFC 1951 3.2.6).
fn put_symbol(bits: &mut BitWriter, symbol: u16) {
    let (code, len) = match symbol {
        0..=143 => (0x30 + symbol, 8),
        144..=255 => (0x190 + symbol - 144, 9),
        256..=279 => (symbol - 256, 7),
        _ => (0xC0 + symbol - 280, 8),
    };
    bits.put_huffman(code, len);
}

fn put_length(bits: &mut BitWriter, length: usize) {
    let length = length as u16;
    let index = LENGTH_BASE.iter().rposition(|&base| base <= length).unwrap_or(0);
    put_symbol(bits, 257 + index as u16);
    bits.put(u32::from(length - LENGTH_BASE[index]), LENGTH_EXTRA[index]);
}

fn put_distance(bits: &mut BitWriter, distance: usize) {
    let distance = distance as u16;
    let index = DISTANCE_BASE.iter().rposition(|&base| base <= distance).unwrap_or(0);
    bits.put_huffman(index as u16, 5);
    bits.put(u32::from(distance - DISTANCE_BASE[index]), DISTANCE_EXTRA[index]);
}

/// Bits packed from the least significant end of each byte, as DEFLATE wants.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    n: u8,
}

impl BitWriter {
    /// `count` bits of `value`, least significant first (extra bits, header fields).
    fn put(&mut self, value: u32, count: u8) {
        for k in 0..count {
            self.acc |= ((value >> k) & 1) << self.n;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc as u8);
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    /// A Huffman code of `len` bits, most significant first.
    fn put_huffman(&mut self, code: u16, len: u8) {
        let reversed = (0..len).fold(0u32, |r, k| (r << 1) | ((u32::from(code) >> k) & 1));
        self.put(reversed, len);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}
