//! The PNG is read back by a decoder written for the tests (inflate, chunk CRCs, Adler-32), so
//! a wrong bit in the encoder shows as a wrong pixel, not as an image nobody looked at.

use tam_core::Timestamp;
use tam_core::comms::ScorePoint;

use super::{font, png, score_chart, score_png};

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A 90-day period with three scans: Jan 11 at 90, Feb 20 at 75, Apr 01 at 50.
fn quarter() -> (Vec<ScorePoint>, Timestamp, Timestamp) {
    let history = vec![
        ScorePoint { as_of: at("2026-01-11T00:00:00Z"), score: 90 },
        ScorePoint { as_of: at("2026-02-20T00:00:00Z"), score: 75 },
        ScorePoint { as_of: at("2026-04-01T00:00:00Z"), score: 50 },
    ];
    (history, at("2026-01-01T00:00:00Z"), at("2026-04-01T00:00:00Z"))
}

/// Reads DEFLATE bits: least significant bit of each byte first.
struct Bits<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> u32 {
        let b = u32::from(self.bytes[self.pos / 8] >> (self.pos % 8)) & 1;
        self.pos += 1;
        b
    }
    fn bits(&mut self, n: u32) -> u32 {
        (0..n).fold(0, |v, k| v | self.bit() << k)
    }
    /// A fixed-code literal/length symbol: codes are read most significant bit first.
    fn symbol(&mut self) -> u32 {
        let mut code = (0..7).fold(0, |c, _| (c << 1) | self.bit());
        if code <= 0b001_0111 {
            return 256 + code;
        }
        code = (code << 1) | self.bit();
        match code {
            0x30..=0xBF => code - 0x30,
            0xC0..=0xC7 => 280 + code - 0xC0,
            _ => 144 + ((code << 1) | self.bit()) - 0x190,
        }
    }
}

/// Inflate of stored and fixed-Huffman blocks: all this encoder writes.
fn inflate(data: &[u8]) -> Vec<u8> {
    const LEN_BASE: [u32; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227,
        258,
    ];
    const LEN_EXTRA: [u32; 29] =
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
    let mut out: Vec<u8> = Vec::new();
    let mut r = Bits { bytes: data, pos: 0 };
    loop {
        let last = r.bit() == 1;
        match r.bits(2) {
            0 => {
                r.pos = r.pos.div_ceil(8) * 8;
                let len = r.bits(16) as usize;
                assert_eq!(r.bits(16) as usize, !len & 0xFFFF, "NLEN");
                out.extend((0..len).map(|_| r.bits(8) as u8));
            }
            1 => loop {
                let sym = r.symbol();
                match sym {
                    0..=255 => out.push(sym as u8),
                    256 => break,
                    257..=285 => {
                        let i = (sym - 257) as usize;
                        let len = LEN_BASE[i] + r.bits(LEN_EXTRA[i]);
                        let code = (0..5).fold(0, |c, _| (c << 1) | r.bit());
                        assert!(code < 30, "distance code {code}");
                        let extra = if code < 4 { 0 } else { code / 2 - 1 };
                        let base = if code < 4 { code + 1 } else { ((2 + (code & 1)) << extra) + 1 };
                        let dist = (base + r.bits(extra)) as usize;
                        assert!(dist <= out.len(), "distance {dist} before the start");
                        for _ in 0..len {
                            out.push(out[out.len() - dist]);
                        }
                    }
                    _ => panic!("symbol {sym}"),
                }
            },
            t => panic!("block type {t}"),
        }
        if last {
            return out;
        }
    }
}

struct Image {
    width: usize,
    height: usize,
    palette: Vec<[u8; 3]>,
    pixels: Vec<u8>,
}

impl Image {
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        self.palette[usize::from(self.pixels[y * self.width + x])]
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

/// Decodes a PNG, checking every chunk's CRC, the zlib header and Adler-32 on the way.
fn decode(file: &[u8]) -> Image {
    assert_eq!(&file[..8], b"\x89PNG\r\n\x1a\n");
    let (mut pos, mut ihdr, mut palette, mut idat, mut kinds) = (8, Vec::new(), Vec::new(), Vec::new(), Vec::new());
    while pos < file.len() {
        let len = be32(&file[pos..]) as usize;
        let kind = &file[pos + 4..pos + 8];
        let data = &file[pos + 8..pos + 8 + len];
        assert_eq!(be32(&file[pos + 8 + len..]), png::crc32(&file[pos + 4..pos + 8 + len]), "CRC of {kind:?}");
        kinds.push(String::from_utf8(kind.to_vec()).unwrap());
        match kind {
            b"IHDR" => ihdr = data.to_vec(),
            b"PLTE" => palette = data.chunks(3).map(|c| [c[0], c[1], c[2]]).collect(),
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    assert_eq!(kinds, ["IHDR", "PLTE", "IDAT", "IEND"]);
    let (width, height) = (be32(&ihdr) as usize, be32(&ihdr[4..]) as usize);
    assert_eq!(&ihdr[8..], [8, 3, 0, 0, 0], "8-bit palette, no interlace");
    assert_eq!(idat[0] & 0x0F, 8, "deflate");
    assert_eq!((u32::from(idat[0]) * 256 + u32::from(idat[1])) % 31, 0, "zlib check bits");
    let raw = inflate(&idat[2..idat.len() - 4]);
    assert_eq!(be32(&idat[idat.len() - 4..]), png::adler32(&raw), "Adler-32");
    assert_eq!(raw.len(), height * (width + 1));
    let mut pixels = Vec::with_capacity(width * height);
    for row in raw.chunks(width + 1) {
        assert_eq!(row[0], 0, "filter type");
        pixels.extend_from_slice(&row[1..]);
    }
    assert!(pixels.iter().all(|&p| usize::from(p) < palette.len()), "indices inside the palette");
    Image { width, height, palette, pixels }
}

const BLUE: [u8; 3] = [0x1f, 0x6f, 0xeb];
const GREEN: [u8; 3] = [0x2d, 0xa4, 0x4e];
const RED: [u8; 3] = [0xd1, 0x24, 0x2f];
const TEXT: [u8; 3] = [0x57, 0x60, 0x6a];
const WHITE: [u8; 3] = [0xff, 0xff, 0xff];

/// `text` is drawn with its top-left corner at (x, y): every glyph pixel in `colour`, and no
/// other pixel of the cell in it.
fn assert_text(img: &Image, x: usize, y: usize, text: &str, colour: [u8; 3]) {
    for (i, c) in text.chars().enumerate() {
        assert!(font::has(c), "{c:?} is in the font");
        for (row, bits) in font::glyph(c).iter().enumerate() {
            for col in 0..5 {
                let (px, py) = (x + i * 6 + col, y + row);
                let ink = bits >> (4 - col) & 1 == 1;
                assert_eq!(img.rgb(px, py) == colour, ink, "{text:?}: {c:?} at ({px}, {py})");
            }
        }
    }
}

#[test]
fn checksums_match_their_published_check_values() {
    assert_eq!(png::crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(png::crc32(b""), 0);
    assert_eq!(png::adler32(b"Wikipedia"), 0x11E6_0398);
    assert_eq!(png::adler32(&vec![0xFF; 100_000]), {
        let (mut a, mut b) = (1u64, 0u64);
        for _ in 0..100_000 {
            a = (a + 255) % 65_521;
            b = (b + a) % 65_521;
        }
        (b << 16 | a) as u32
    });
}

#[test]
fn deflate_round_trips_runs_repeated_rows_and_noise() {
    let mut noise = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..5000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        noise.push((x >> 16) as u8);
    }
    let mut rows = Vec::new();
    for r in 0..300u32 {
        rows.extend((0..700u32).map(|c| if (c + r / 50) % 97 < 3 { 2 } else { 0 }));
    }
    let cases: Vec<(Vec<u8>, usize)> = vec![
        (vec![], 1),
        (vec![7], 1),
        (vec![7, 7], 1),
        (vec![7; 259], 1),
        (vec![1; 100_000], 561),
        ((0..=255).collect(), 1),
        (noise, 77),
        (rows, 700),
    ];
    for (data, stride) in cases {
        let z = png::zlib(&data, stride);
        assert_eq!(inflate(&z[2..z.len() - 4]), data, "{} bytes, stride {stride}", data.len());
    }
}

#[test]
fn the_png_draws_thresholds_labels_dates_and_the_score_line() {
    let (history, from, to) = quarter();
    let file = score_png(&history, from, to);
    let img = decode(&file);
    assert_eq!((img.width, img.height), (560, 200));
    // The plot spans x 30..=500 and y 16 (score 100) ..= 176 (score 0): 1.6 px a point.
    assert_eq!(img.rgb(31, 64), GREEN, "the 70 line");
    assert_eq!(img.rgb(31, 112), RED, "the 40 line");
    assert_eq!(img.rgb(35, 64), img.rgb(35, 63), "the threshold lines are dashed");
    assert_text(&img, 505, 61, "70 green", GREEN);
    assert_text(&img, 505, 109, "40 red", RED);
    assert_text(&img, 8, 13, "100", TEXT);
    assert_text(&img, 14, 93, "50", TEXT);
    assert_text(&img, 20, 173, "0", TEXT);
    // Five dates, evenly spaced and centred under their ticks (the first kept in the image).
    for (x, label) in [(13, "Jan 01"), (131, "Jan 23"), (248, "Feb 15"), (366, "Mar 09"), (483, "Apr 01")] {
        assert_text(&img, x, 182, label, TEXT);
    }
    // Each scan is a dot, and the line between two scans passes their midpoint.
    for (x, y) in [(82, 32), (291, 56), (500, 96)] {
        assert_eq!(img.rgb(x, y), BLUE, "point ({x}, {y})");
        assert_eq!(img.rgb(x + 3, y), BLUE, "dot around ({x}, {y})");
    }
    assert_eq!(img.rgb((82 + 291) / 2, (32 + 56) / 2), BLUE, "the line between the first two points");
    assert_eq!(img.rgb((291 + 500) / 2, (56 + 96) / 2), BLUE, "the line between the last two points");
    assert_eq!(img.rgb(100, 150), [0xf6, 0xf8, 0xfa], "inside the plot, away from the line");
    assert_eq!(img.rgb(2, 2), WHITE);
    assert!(file.len() < 6_000, "a chart is a few KB, not {} bytes", file.len());
    assert_eq!(file, score_png(&history, from, to), "the same scores give the same bytes");
}

#[test]
fn a_short_or_empty_period_still_makes_a_valid_png() {
    let (_, from, _) = quarter();
    for (history, to) in [(vec![], from), (vec![ScorePoint { as_of: from, score: 100 }], at("2026-01-01T06:00:00Z"))] {
        let img = decode(&score_png(&history, from, to));
        assert_eq!((img.width, img.height), (560, 200));
        // One date, not five copies of it.
        assert_text(&img, 13, 182, "Jan 01", TEXT);
        assert_eq!(img.rgb(130 + 2, 182 + 3), WHITE, "no second label");
    }
}

#[test]
fn the_svg_has_dates_axis_labels_and_named_thresholds() {
    let (history, from, to) = quarter();
    let svg = score_chart(&history, from, to);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"560\" height=\"200\""), "{svg}");
    for label in ["Jan 01", "Jan 23", "Feb 15", "Mar 09", "Apr 01", ">100<", ">50<", ">0<", ">70 green<", ">40 red<"] {
        assert!(svg.contains(label), "{label}: {svg}");
    }
    assert!(
        svg.contains(
            r##"<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="82.2,32.0 291.1,56.0 500.0,96.0"/>"##
        ),
        "{svg}"
    );
    assert!(
        svg.contains(r##"<line x1="30" y1="64.0" x2="500" y2="64.0" stroke="#2da44e" stroke-dasharray="4 3"/>"##),
        "{svg}"
    );
}
