//! A palette canvas: pixels are colour indices; drawing outside it is clipped.

use super::font;

pub struct Canvas {
    pub width: i32,
    pub height: i32,
    pub pixels: Vec<u8>,
}

impl Canvas {
    pub fn new(width: i32, height: i32, background: u8) -> Canvas {
        let len = usize::try_from(width * height).unwrap_or(0);
        Canvas { width, height, pixels: vec![background; len] }
    }

    pub fn set(&mut self, x: i32, y: i32, colour: u8) {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(y * self.width + x) as usize] = colour;
        }
    }

    /// The rectangle from (x0, y0) to (x1, y1), both corners included.
    pub fn fill(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, colour: u8) {
        for y in y0..=y1 {
            for x in x0..=x1 {
                self.set(x, y, colour);
            }
        }
    }

    /// A horizontal line from x0 to x1; with `dash` = (on, off), dashed from x0.
    pub fn hline(&mut self, x0: i32, x1: i32, y: i32, colour: u8, dash: Option<(i32, i32)>) {
        for x in x0..=x1 {
            let on = dash.is_none_or(|(on, off)| (x - x0) % (on + off) < on);
            if on {
                self.set(x, y, colour);
            }
        }
    }

    /// A line 2 px thick (Bresenham, with a 2x2 pen).
    pub fn line(&mut self, (x0, y0): (i32, i32), (x1, y1): (i32, i32), colour: u8) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.fill(x, y, x + 1, y + 1, colour);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// A filled disc of radius `r` centred on (cx, cy).
    pub fn dot(&mut self, cx: i32, cy: i32, r: i32, colour: u8) {
        for y in -r..=r {
            for x in -r..=r {
                if x * x + y * y <= r * r + r {
                    self.set(cx + x, cy + y, colour);
                }
            }
        }
    }

    /// `text` with its top-left corner at (x, y).
    pub fn text(&mut self, x: i32, y: i32, text: &str, colour: u8) {
        for (i, c) in text.chars().enumerate() {
            let left = x + i as i32 * font::ADVANCE;
            for (row, bits) in font::glyph(c).iter().enumerate() {
                for col in 0..font::WIDTH {
                    if bits >> (font::WIDTH - 1 - col) & 1 == 1 {
                        self.set(left + col, y + row as i32, colour);
                    }
                }
            }
        }
    }
}
