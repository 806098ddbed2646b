//! Demo catalog generator: a deterministic, realistic-looking product catalog for
//! demos, load tests and screenshots.
//!
//! Every product is derived from its own RNG seeded by `(seed, index)`, so the same
//! pair always yields the same product whatever else is generated, in any order.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

/// The seven categories of the original system, in its order.
pub const CATEGORIES: [&str; 7] = crate::migrations::DEFAULT_CATEGORIES;

/// Relative frequency of each entry of [`CATEGORIES`]; sums to 100.
const CATEGORY_WEIGHTS: [u32; 7] = [22, 20, 11, 18, 12, 10, 7];

/// SKU prefix of each entry of [`CATEGORIES`].
const SKU_PREFIXES: [&str; 7] = ["ELE", "CLO", "BOO", "HOM", "SPO", "TOY", "OTH"];

/// One generated demo product, shaped like the catalog's product record.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoProduct {
    /// 1..=200 characters, e.g. "Merino Crew-Neck Sweater".
    pub name: String,
    /// One to three sentences, at most 2000 characters.
    pub description: String,
    /// Positive, ending in .99, .49, .95 or .00.
    pub price_cents: i64,
    /// 0..=500; 0 means out of stock.
    pub stock: i64,
    /// One of [`CATEGORIES`].
    pub category: &'static str,
    /// 2–5 distinct lowercase tags, the category first.
    pub tags: Vec<String>,
    /// A JSON object whose keys depend on the category.
    pub attributes: Value,
    /// Unique within a catalog: category prefix, zero-padded index, check byte.
    pub sku: String,
}

/// The `index`-th product of the catalog for `seed`: the same `(seed, index)` always
/// gives the same product, independent of how many products are generated or in
/// which order.
pub fn product(seed: u64, index: u64) -> DemoProduct {
    let mut rng = StdRng::seed_from_u64(splitmix64(seed ^ splitmix64(index)));
    let cat = weighted(&mut rng, &CATEGORY_WEIGHTS);
    let draft = match cat {
        0 => electronics(&mut rng),
        1 => clothing(&mut rng),
        2 => book(&mut rng),
        3 => home(&mut rng),
        4 => sports(&mut rng),
        5 => toy(&mut rng),
        _ => other(&mut rng),
    };
    let stock = stock(&mut rng);
    let check: u8 = rng.random();
    let mut tags = Vec::with_capacity(5);
    push_tag(&mut tags, CATEGORIES[cat]);
    for tag in draft.tags.iter().flatten() {
        push_tag(&mut tags, tag);
    }
    DemoProduct {
        name: draft.name,
        description: draft.description,
        price_cents: draft.price_cents,
        stock,
        category: CATEGORIES[cat],
        tags,
        attributes: Value::Object(draft.attributes),
        // The index alone makes the SKU unique; seven digits cover 10 million products.
        sku: format!("{}-{index:07}-{check:02X}", SKU_PREFIXES[cat]),
    }
}

/// Products `0..n` for `seed`.
pub fn catalog(seed: u64, n: u64) -> impl Iterator<Item = DemoProduct> {
    (0..n).map(move |index| product(seed, index))
}

/// What a category generator produces; `product` adds stock, SKU and the category tag.
struct Draft {
    name: String,
    description: String,
    price_cents: i64,
    /// Up to four tags beyond the category; `None` slots are skipped.
    tags: [Option<&'static str>; 4],
    attributes: Map<String, Value>,
}

const fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

/// `K` different entries of `items` (repeats only if `items` is shorter than `K`).
fn pick_distinct<const K: usize>(rng: &mut StdRng, items: &[&'static str]) -> [&'static str; K] {
    let mut chosen = [usize::MAX; K];
    let mut filled = 0;
    while filled < K {
        let i = rng.random_range(0..items.len());
        if filled >= items.len() || !chosen[..filled].contains(&i) {
            chosen[filled] = i;
            filled += 1;
        }
    }
    chosen.map(|i| items[i])
}

fn weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut roll = rng.random_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if roll < w {
            return i;
        }
        roll -= w;
    }
    weights.len() - 1
}

fn push_tag(tags: &mut Vec<String>, tag: &str) {
    let tag = tag.to_lowercase();
    if tags.len() < 5 && !tags.contains(&tag) {
        tags.push(tag);
    }
}

/// One of the general merchandising tags, or none most of the time.
fn promo_tag(rng: &mut StdRng) -> Option<&'static str> {
    rng.random_bool(0.35).then(|| pick(rng, PROMO_TAGS))
}

fn article(word: &str) -> &'static str {
    match word.as_bytes().first() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u' | b'A' | b'E' | b'I' | b'O' | b'U') => "an",
        _ => "a",
    }
}

/// The noun as used in running text: "Dinner Plates (Set of 4)" becomes "Dinner Plates".
fn bare_noun(noun: &str) -> &str {
    noun.find(" (").map_or(noun, |end| &noun[..end])
}

fn is_plural(noun: &str) -> bool {
    let noun = bare_noun(noun);
    noun.ends_with('s') && !noun.ends_with("ss")
}

/// Sentence opening such as "A ribbed merino sweater" or "Slim-fit linen trousers".
fn opening(modifiers: &str, noun: &str) -> String {
    let phrase = format!("{modifiers} {}", bare_noun(noun)).to_lowercase();
    if is_plural(noun) {
        capitalize(&phrase)
    } else {
        format!("{} {phrase}", capitalize(article(&phrase)))
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A price between `min_usd` and `max_usd`, log-uniform (cheap items are more common),
/// with a shop-like ending: .99, .49, .95 or a round .00.
fn price_cents(rng: &mut StdRng, (min_usd, max_usd): (u32, u32)) -> i64 {
    let (min, max) = (
        i64::from(min_usd.max(1)),
        i64::from(max_usd.max(min_usd).max(1)),
    );
    let (lo, hi) = ((min as f64).ln(), (max as f64).ln());
    let mut dollars = rng.random_range(lo..=hi).exp() as i64;
    let cents = match rng.random_range(0..100) {
        0..=59 => 99,
        60..=74 => 49,
        75..=84 => 95,
        _ => 0,
    };
    if cents == 0 {
        if dollars >= 20 {
            dollars = (dollars + 4) / 5 * 5;
        }
        dollars = dollars.clamp(min, max);
    } else {
        if dollars >= 100 && rng.random_bool(0.7) {
            dollars = dollars / 10 * 10 + 9;
        }
        dollars = dollars.clamp(min, (max - 1).max(min));
    }
    dollars * 100 + cents
}

/// Mostly 5–150 (leaning low), some nearly sold out, a few out of stock, a few deep.
fn stock(rng: &mut StdRng) -> i64 {
    match rng.random_range(0..100) {
        0..=5 => 0,
        6..=13 => rng.random_range(1..5),
        14..=87 => {
            let (a, b) = (rng.random_range(5..=150), rng.random_range(5..=150));
            a.min(b)
        }
        _ => rng.random_range(151..=500),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[rustfmt::skip]
const PROMO_TAGS: &[&str] = &[
    "bestseller", "new arrival", "gift idea", "staff pick", "limited edition", "sale",
    "eco-friendly", "online exclusive",
];

#[derive(Clone, Copy)]
enum Gadget {
    Laptop,
    Desktop,
    Phone,
    Tablet,
    Audio,
    WiredAudio,
    Wearable,
    Camera,
    Drone,
    Storage,
    Display,
    PowerBank,
    Accessory,
    SmartHome,
}

struct Device {
    noun: &'static str,
    tag: &'static str,
    kind: Gadget,
    usd: (u32, u32),
}

const fn device(noun: &'static str, tag: &'static str, kind: Gadget, usd: (u32, u32)) -> Device {
    Device {
        noun,
        tag,
        kind,
        usd,
    }
}

#[rustfmt::skip]
const DEVICES: &[Device] = &[
    device("Wireless Noise-Cancelling Headphones", "headphones", Gadget::Audio, (59, 449)),
    device("True Wireless Earbuds", "earbuds", Gadget::Audio, (29, 299)),
    device("Sport Earbuds", "earbuds", Gadget::Audio, (25, 179)),
    device("Portable Bluetooth Speaker", "speaker", Gadget::Audio, (25, 299)),
    device("Smart Speaker", "speaker", Gadget::SmartHome, (39, 299)),
    device("Surround Sound Soundbar", "soundbar", Gadget::WiredAudio, (149, 999)),
    device("Studio Monitor Headphones", "headphones", Gadget::WiredAudio, (49, 349)),
    device("USB Condenser Microphone", "microphone", Gadget::WiredAudio, (39, 249)),
    device("Turntable", "vinyl", Gadget::WiredAudio, (99, 699)),
    device("Ultrabook Laptop", "laptop", Gadget::Laptop, (699, 2499)),
    device("Gaming Laptop", "laptop", Gadget::Laptop, (899, 2500)),
    device("2-in-1 Convertible Laptop", "laptop", Gadget::Laptop, (449, 1799)),
    device("Student Laptop", "laptop", Gadget::Laptop, (199, 699)),
    device("Mini Desktop PC", "desktop", Gadget::Desktop, (299, 1499)),
    device("All-in-One Desktop", "desktop", Gadget::Desktop, (699, 2299)),
    device("Smartphone", "smartphone", Gadget::Phone, (199, 1299)),
    device("Rugged Smartphone", "smartphone", Gadget::Phone, (249, 799)),
    device("Foldable Smartphone", "smartphone", Gadget::Phone, (899, 1999)),
    device("Tablet", "tablet", Gadget::Tablet, (149, 1199)),
    device("Kids Tablet", "tablet", Gadget::Tablet, (79, 249)),
    device("E-Reader", "e-reader", Gadget::Tablet, (89, 299)),
    device("Smartwatch", "smartwatch", Gadget::Wearable, (99, 799)),
    device("GPS Running Watch", "smartwatch", Gadget::Wearable, (149, 699)),
    device("Fitness Tracker", "fitness tracker", Gadget::Wearable, (29, 199)),
    device("Mirrorless Camera", "camera", Gadget::Camera, (499, 2500)),
    device("Action Camera", "camera", Gadget::Camera, (99, 549)),
    device("Instant Camera", "camera", Gadget::Camera, (59, 199)),
    device("Dash Cam", "dash cam", Gadget::Camera, (49, 249)),
    device("Camera Drone", "drone", Gadget::Drone, (199, 1999)),
    device("Portable SSD", "ssd", Gadget::Storage, (49, 399)),
    device("microSD Card", "memory card", Gadget::Storage, (15, 149)),
    device("External Hard Drive", "hard drive", Gadget::Storage, (49, 299)),
    device("NAS Enclosure", "nas", Gadget::Storage, (179, 899)),
    device("4K Monitor", "monitor", Gadget::Display, (249, 1299)),
    device("Curved Gaming Monitor", "monitor", Gadget::Display, (199, 999)),
    device("Portable Projector", "projector", Gadget::Display, (149, 899)),
    device("OLED Smart TV", "tv", Gadget::Display, (699, 2500)),
    device("Power Bank", "power bank", Gadget::PowerBank, (19, 129)),
    device("Mechanical Keyboard", "keyboard", Gadget::Accessory, (39, 249)),
    device("Ergonomic Wireless Mouse", "mouse", Gadget::Accessory, (19, 129)),
    device("USB-C Docking Station", "dock", Gadget::Accessory, (39, 299)),
    device("GaN Fast Charger", "charger", Gadget::Accessory, (19, 79)),
    device("3-in-1 Wireless Charging Stand", "charger", Gadget::Accessory, (29, 149)),
    device("Streaming Webcam", "webcam", Gadget::Accessory, (29, 249)),
    device("Wi-Fi 6E Mesh Router", "router", Gadget::Accessory, (79, 599)),
    device("Wireless Game Controller", "gaming", Gadget::Accessory, (29, 199)),
    device("Smart Thermostat", "thermostat", Gadget::SmartHome, (99, 279)),
    device("Video Doorbell", "doorbell", Gadget::SmartHome, (59, 249)),
    device("Indoor Security Camera", "security camera", Gadget::SmartHome, (29, 199)),
    device("Smart Plug (2-Pack)", "smart plug", Gadget::SmartHome, (15, 49)),
    device("Smart LED Bulb Starter Kit", "lighting", Gadget::SmartHome, (25, 199)),
    device("Streaming Media Stick", "streaming", Gadget::SmartHome, (25, 129)),
];

#[rustfmt::skip]
const ELECTRONICS_BRANDS: &[&str] = &[
    "Aurora", "Voltra", "Nimbus", "Lumen", "Kestrel", "Quanta", "Helix", "Zephyr", "Arcwave",
    "Sonique", "Pixelon", "Corvex", "Brightline", "Tessel", "Halcyon", "Ionis", "Polaris", "Cinder",
    "Mistral", "Northwind", "Vantor", "Obsidian", "Luxa", "Elevon", "Skyforge", "Nexora", "Radian",
    "Tidal", "Klarion", "Ferro",
];

const MODEL_LINES: &[&str] = &[
    "Pulse", "Nova", "Echo", "Vector", "Prism", "Apex", "Flux", "Orbit", "Spark", "Atlas", "Titan",
    "Zen", "Vibe", "Core", "Swift", "Aero", "Halo", "Fusion", "Quest", "Edge",
];

const MODEL_SUFFIXES: &[&str] = &[
    " Pro", " Max", " Lite", " Air", " Plus", " Mini", " SE", " X", " Ultra", " Neo", " 2", " 3",
    " 4", " 5", " 7", " 9", " S", " GT",
];

#[rustfmt::skip]
const DEVICE_COLORS: &[&str] = &[
    "Midnight Black", "Silver", "Space Gray", "Arctic White", "Ocean Blue", "Graphite", "Rose Gold",
    "Forest Green", "Sand", "Titanium",
];

struct GadgetProfile {
    tag: &'static str,
    features: &'static [&'static str],
    uses: &'static [&'static str],
}

const fn gadget_profile(kind: Gadget) -> GadgetProfile {
    match kind {
        Gadget::Audio => GadgetProfile {
            tag: "audio",
            features: &[
                "adaptive noise cancellation",
                "multipoint Bluetooth 5.3 pairing",
                "custom-tuned dynamic drivers",
                "a low-latency gaming mode",
                "USB-C fast charging",
                "an IPX4 sweat-resistant build",
                "a natural-sounding transparency mode",
                "spatial audio with head tracking",
            ],
            uses: &[
                "daily commutes",
                "long-haul flights",
                "focused work sessions",
                "workouts",
                "late-night listening",
            ],
        },
        Gadget::WiredAudio => GadgetProfile {
            tag: "audio",
            features: &[
                "a detachable braided cable",
                "a flat, accurate frequency response",
                "memory-foam cushioning",
                "a gold-plated 3.5 mm connection",
                "an all-metal chassis",
                "simple plug-and-play setup",
                "rich, room-filling bass",
            ],
            uses: &[
                "home recording",
                "podcasting",
                "mixing and mastering",
                "movie nights",
                "vinyl evenings",
            ],
        },
        Gadget::Laptop => GadgetProfile {
            tag: "computers",
            features: &[
                "a bright 2.8K display",
                "an aluminium unibody chassis",
                "a comfortable backlit keyboard",
                "Wi-Fi 6E connectivity",
                "two Thunderbolt 4 ports",
                "a 1080p webcam with privacy shutter",
                "a fingerprint reader",
                "a quiet dual-fan cooling system",
            ],
            uses: &[
                "remote work",
                "students",
                "creative projects",
                "gaming on the go",
                "business travel",
            ],
        },
        Gadget::Desktop => GadgetProfile {
            tag: "computers",
            features: &[
                "tool-free upgradability",
                "dual 4K display output",
                "Wi-Fi 6E connectivity",
                "a whisper-quiet cooling system",
                "front-panel USB-C",
                "a space-saving footprint",
            ],
            uses: &[
                "home offices",
                "family computing",
                "photo editing",
                "small businesses",
                "media centres",
            ],
        },
        Gadget::Phone => GadgetProfile {
            tag: "mobile",
            features: &[
                "a 120 Hz OLED display",
                "a triple-lens camera system",
                "IP68 water and dust resistance",
                "5G connectivity",
                "fast wireless charging",
                "toughened glass front and back",
                "five years of software updates",
            ],
            uses: &[
                "everyday use",
                "mobile photography",
                "streaming on the go",
                "busy professionals",
                "outdoor adventures",
            ],
        },
        Gadget::Tablet => GadgetProfile {
            tag: "mobile",
            features: &[
                "a laminated anti-glare display",
                "stylus support",
                "quad stereo speakers",
                "a lightweight aluminium body",
                "split-screen multitasking",
                "adjustable warm front light",
                "parental controls",
            ],
            uses: &[
                "reading in bed",
                "note-taking",
                "streaming shows",
                "travel",
                "sketching and drawing",
            ],
        },
        Gadget::Wearable => GadgetProfile {
            tag: "wearables",
            features: &[
                "heart-rate and sleep tracking",
                "built-in dual-band GPS",
                "an always-on AMOLED display",
                "50 m water resistance",
                "contactless payments",
                "over 100 workout modes",
                "blood-oxygen monitoring",
            ],
            uses: &[
                "runners",
                "everyday fitness",
                "swimmers",
                "sleep tracking",
                "hikers",
            ],
        },
        Gadget::Camera => GadgetProfile {
            tag: "photography",
            features: &[
                "a 24 MP sensor",
                "in-body image stabilisation",
                "4K60 video recording",
                "fast hybrid autofocus",
                "a weather-sealed body",
                "a flip-out touchscreen",
                "built-in Wi-Fi transfer",
            ],
            uses: &[
                "travel photography",
                "vlogging",
                "family moments",
                "road trips",
                "action sports",
            ],
        },
        Gadget::Drone => GadgetProfile {
            tag: "photography",
            features: &[
                "a 3-axis gimbal",
                "4K HDR video",
                "omnidirectional obstacle sensing",
                "GPS return-to-home",
                "foldable arms",
                "10 km video transmission",
            ],
            uses: &[
                "aerial photography",
                "travel filmmaking",
                "real-estate shoots",
                "landscape videos",
            ],
        },
        Gadget::Storage => GadgetProfile {
            tag: "storage",
            features: &[
                "USB 3.2 Gen 2 transfer speeds",
                "hardware encryption",
                "a shock-resistant casing",
                "read speeds up to 1,050 MB/s",
                "cross-platform compatibility",
                "automatic backup software",
            ],
            uses: &[
                "photo libraries",
                "video editing",
                "system backups",
                "gaming libraries",
                "moving files between devices",
            ],
        },
        Gadget::Display => GadgetProfile {
            tag: "displays",
            features: &[
                "an IPS panel covering 99% of sRGB",
                "a 144 Hz refresh rate",
                "HDR10 support",
                "a height-adjustable stand",
                "USB-C with 90 W power delivery",
                "built-in speakers",
                "a flicker-free backlight",
            ],
            uses: &[
                "home offices",
                "competitive gaming",
                "photo and video editing",
                "movie nights",
                "multi-window productivity",
            ],
        },
        Gadget::PowerBank => GadgetProfile {
            tag: "charging",
            features: &[
                "65 W USB-C power delivery",
                "pass-through charging",
                "a digital charge display",
                "three output ports",
                "an airline-safe capacity",
            ],
            uses: &["travel", "festivals", "camping trips", "long workdays"],
        },
        Gadget::Accessory => GadgetProfile {
            tag: "accessories",
            features: &[
                "plug-and-play setup",
                "a compact aluminium housing",
                "broad device compatibility",
                "a braided, tangle-free cable",
                "low-latency 2.4 GHz wireless",
                "an ergonomic, travel-friendly design",
                "customisable buttons",
            ],
            uses: &[
                "desk setups",
                "home offices",
                "gaming",
                "travel",
                "video calls",
            ],
        },
        Gadget::SmartHome => GadgetProfile {
            tag: "smart home",
            features: &[
                "voice assistant compatibility",
                "two-minute app setup",
                "energy usage reports",
                "schedules and away modes",
                "end-to-end encrypted video",
                "Matter support",
                "local control without the cloud",
            ],
            uses: &[
                "busy households",
                "renters",
                "energy saving",
                "peace of mind while away",
                "hands-free routines",
            ],
        },
    }
}

fn electronics(rng: &mut StdRng) -> Draft {
    let item = &DEVICES[rng.random_range(0..DEVICES.len())];
    let profile = gadget_profile(item.kind);
    let brand = pick(rng, ELECTRONICS_BRANDS);
    let line = pick(rng, MODEL_LINES);
    let suffix = if rng.random_bool(0.7) {
        pick(rng, MODEL_SUFFIXES)
    } else {
        ""
    };
    let color = pick(rng, DEVICE_COLORS);
    let warranty = pick(rng, &[12, 12, 12, 24, 24, 36]);

    let mut attributes = Map::new();
    attributes.insert("brand".into(), brand.into());
    attributes.insert("warrantyMonths".into(), warranty.into());
    attributes.insert("color".into(), color.into());
    let battery = match item.kind {
        Gadget::Laptop => Some(format!("up to {} hours", rng.random_range(8..=22))),
        Gadget::Phone => Some(format!("{} mAh", rng.random_range(30..=60) * 100)),
        Gadget::Tablet => Some(format!("up to {} hours", rng.random_range(9..=16))),
        Gadget::Audio => Some(format!("up to {} hours", rng.random_range(6..=60))),
        Gadget::Wearable => Some(format!("up to {} days", rng.random_range(1..=14))),
        Gadget::Camera => Some(format!(
            "{} shots per charge",
            rng.random_range(30..=90) * 10
        )),
        Gadget::Drone => Some(format!(
            "{} minutes of flight time",
            rng.random_range(20..=46)
        )),
        Gadget::PowerBank => Some(format!(
            "{} mAh",
            pick(rng, &[5_000, 10_000, 15_000, 20_000, 26_800])
        )),
        _ => None,
    };
    match item.kind {
        Gadget::Laptop | Gadget::Desktop => {
            attributes.insert(
                "ram".into(),
                pick(rng, &["8 GB", "16 GB", "32 GB", "64 GB"]).into(),
            );
            attributes.insert(
                "storage".into(),
                pick(rng, &["256 GB SSD", "512 GB SSD", "1 TB SSD", "2 TB SSD"]).into(),
            );
        }
        Gadget::Phone => {
            attributes.insert(
                "ram".into(),
                pick(rng, &["4 GB", "6 GB", "8 GB", "12 GB"]).into(),
            );
            attributes.insert(
                "storage".into(),
                pick(rng, &["64 GB", "128 GB", "256 GB", "512 GB"]).into(),
            );
        }
        Gadget::Tablet => {
            attributes.insert(
                "storage".into(),
                pick(rng, &["32 GB", "64 GB", "128 GB", "256 GB", "512 GB"]).into(),
            );
        }
        Gadget::Storage => {
            attributes.insert(
                "storage".into(),
                pick(rng, &["128 GB", "256 GB", "512 GB", "1 TB", "2 TB", "4 TB"]).into(),
            );
        }
        Gadget::Display => {
            attributes.insert(
                "screenInches".into(),
                pick(rng, &[24, 27, 32, 34, 43, 55, 65]).into(),
            );
        }
        _ => {}
    }
    if let Some(battery) = &battery {
        attributes.insert("battery".into(), battery.as_str().into());
    }

    let model = format!("{brand} {line}{suffix}");
    let [f1, f2, f3] = pick_distinct::<3>(rng, profile.features);
    let [u1, u2] = pick_distinct::<2>(rng, profile.uses);
    let intro = match rng.random_range(0..4) {
        0 => format!("The {model} pairs {f1} with {f2}."),
        1 => format!("{brand}'s {line}{suffix} brings together {f1}, {f2} and {f3}."),
        2 => format!("Featuring {f1} and {f2}, the {model} is built to keep up with your day."),
        _ => format!(
            "Meet the {model}: {f1}, {f2} and {f3}, finished in {color_lc}.",
            color_lc = color.to_lowercase()
        ),
    };
    let usage = match rng.random_range(0..3) {
        0 => format!("Ideal for {u1} and {u2}."),
        1 => format!("A great fit for {u1}."),
        _ => format!("Designed for {u1}, it is just as much at home with {u2}."),
    };
    let closing = match &battery {
        Some(b) => format!("Battery: {b}. Backed by a {warranty}-month warranty."),
        None => format!("Backed by a {warranty}-month warranty."),
    };

    Draft {
        name: format!("{model} {}", item.noun),
        description: format!("{intro} {usage} {closing}"),
        price_cents: price_cents(rng, item.usd),
        tags: [Some(item.tag), Some(profile.tag), promo_tag(rng), None],
        attributes,
    }
}

#[derive(Clone, Copy)]
enum Fabric {
    KnitTop,
    KnitAccessory,
    Jersey,
    Shirting,
    Bottoms,
    Outerwear,
    Footwear,
    Accessory,
}

#[derive(Clone, Copy)]
enum SizeRun {
    Letter,
    Waist,
    Shoe,
    OneSize,
}

struct Garment {
    noun: &'static str,
    tag: &'static str,
    fabric: Fabric,
    sizes: SizeRun,
    usd: (u32, u32),
}

const fn garment(
    noun: &'static str,
    tag: &'static str,
    fabric: Fabric,
    sizes: SizeRun,
    usd: (u32, u32),
) -> Garment {
    Garment {
        noun,
        tag,
        fabric,
        sizes,
        usd,
    }
}

#[rustfmt::skip]
const GARMENTS: &[Garment] = &[
    garment("Sweater", "knitwear", Fabric::KnitTop, SizeRun::Letter, (39, 189)),
    garment("Cardigan", "knitwear", Fabric::KnitTop, SizeRun::Letter, (45, 199)),
    garment("Jumper", "knitwear", Fabric::KnitTop, SizeRun::Letter, (39, 179)),
    garment("Sweater Vest", "knitwear", Fabric::KnitTop, SizeRun::Letter, (35, 129)),
    garment("Polo Sweater", "knitwear", Fabric::KnitTop, SizeRun::Letter, (45, 159)),
    garment("Beanie", "hats", Fabric::KnitAccessory, SizeRun::OneSize, (15, 59)),
    garment("Scarf", "scarves", Fabric::KnitAccessory, SizeRun::OneSize, (19, 149)),
    garment("Gloves", "gloves", Fabric::KnitAccessory, SizeRun::Letter, (15, 69)),
    garment("T-Shirt", "t-shirts", Fabric::Jersey, SizeRun::Letter, (12, 49)),
    garment("Long-Sleeve Tee", "t-shirts", Fabric::Jersey, SizeRun::Letter, (15, 55)),
    garment("Polo Shirt", "polos", Fabric::Jersey, SizeRun::Letter, (25, 89)),
    garment("Henley", "tops", Fabric::Jersey, SizeRun::Letter, (22, 69)),
    garment("Tank Top", "tops", Fabric::Jersey, SizeRun::Letter, (10, 39)),
    garment("Hoodie", "sweatshirts", Fabric::Jersey, SizeRun::Letter, (35, 119)),
    garment("Sweatshirt", "sweatshirts", Fabric::Jersey, SizeRun::Letter, (29, 99)),
    garment("Joggers", "loungewear", Fabric::Jersey, SizeRun::Letter, (29, 95)),
    garment("Leggings", "activewear", Fabric::Jersey, SizeRun::Letter, (19, 89)),
    garment("Shirt", "shirts", Fabric::Shirting, SizeRun::Letter, (29, 129)),
    garment("Button-Down Shirt", "shirts", Fabric::Shirting, SizeRun::Letter, (35, 139)),
    garment("Blouse", "blouses", Fabric::Shirting, SizeRun::Letter, (29, 149)),
    garment("Overshirt", "shirts", Fabric::Shirting, SizeRun::Letter, (45, 159)),
    garment("Camp-Collar Shirt", "shirts", Fabric::Shirting, SizeRun::Letter, (35, 119)),
    garment("Shirt Dress", "dresses", Fabric::Shirting, SizeRun::Letter, (49, 189)),
    garment("Midi Dress", "dresses", Fabric::Shirting, SizeRun::Letter, (49, 229)),
    garment("Wrap Dress", "dresses", Fabric::Shirting, SizeRun::Letter, (49, 199)),
    garment("Chinos", "trousers", Fabric::Bottoms, SizeRun::Waist, (39, 129)),
    garment("Trousers", "trousers", Fabric::Bottoms, SizeRun::Waist, (45, 169)),
    garment("Jeans", "jeans", Fabric::Bottoms, SizeRun::Waist, (39, 189)),
    garment("Shorts", "shorts", Fabric::Bottoms, SizeRun::Waist, (25, 79)),
    garment("Cargo Pants", "trousers", Fabric::Bottoms, SizeRun::Waist, (39, 119)),
    garment("Carpenter Pants", "trousers", Fabric::Bottoms, SizeRun::Waist, (45, 129)),
    garment("Jacket", "jackets", Fabric::Outerwear, SizeRun::Letter, (59, 249)),
    garment("Parka", "coats", Fabric::Outerwear, SizeRun::Letter, (99, 250)),
    garment("Rain Jacket", "jackets", Fabric::Outerwear, SizeRun::Letter, (59, 229)),
    garment("Puffer Jacket", "jackets", Fabric::Outerwear, SizeRun::Letter, (79, 249)),
    garment("Trench Coat", "coats", Fabric::Outerwear, SizeRun::Letter, (99, 250)),
    garment("Overcoat", "coats", Fabric::Outerwear, SizeRun::Letter, (119, 250)),
    garment("Gilet", "vests", Fabric::Outerwear, SizeRun::Letter, (45, 149)),
    garment("Bomber Jacket", "jackets", Fabric::Outerwear, SizeRun::Letter, (69, 229)),
    garment("Sneakers", "shoes", Fabric::Footwear, SizeRun::Shoe, (49, 179)),
    garment("Chelsea Boots", "boots", Fabric::Footwear, SizeRun::Shoe, (89, 250)),
    garment("Loafers", "shoes", Fabric::Footwear, SizeRun::Shoe, (69, 219)),
    garment("Sandals", "sandals", Fabric::Footwear, SizeRun::Shoe, (29, 119)),
    garment("Hiking Boots", "boots", Fabric::Footwear, SizeRun::Shoe, (89, 239)),
    garment("Slip-On Shoes", "shoes", Fabric::Footwear, SizeRun::Shoe, (39, 129)),
    garment("Derby Shoes", "shoes", Fabric::Footwear, SizeRun::Shoe, (79, 229)),
    garment("Belt", "belts", Fabric::Accessory, SizeRun::Waist, (19, 89)),
    garment("Baseball Cap", "hats", Fabric::Accessory, SizeRun::OneSize, (15, 49)),
    garment("Tote Bag", "bags", Fabric::Accessory, SizeRun::OneSize, (19, 129)),
    garment("Socks (3-Pack)", "socks", Fabric::Accessory, SizeRun::Letter, (12, 39)),
    garment("Bucket Hat", "hats", Fabric::Accessory, SizeRun::Letter, (19, 59)),
    garment("Card Wallet", "wallets", Fabric::Accessory, SizeRun::OneSize, (19, 99)),
];

struct FabricProfile {
    materials: &'static [&'static str],
    styles: &'static [&'static str],
    benefits: &'static [&'static str],
    details: &'static [&'static str],
}

const fn fabric_profile(fabric: Fabric) -> FabricProfile {
    match fabric {
        Fabric::KnitTop => FabricProfile {
            materials: &[
                "Merino",
                "Cashmere",
                "Lambswool",
                "Alpaca-Blend",
                "Cotton-Cashmere",
                "Recycled Wool",
                "Organic Cotton",
                "Mohair-Blend",
            ],
            styles: &[
                "Crew-Neck",
                "V-Neck",
                "Cable-Knit",
                "Ribbed",
                "Chunky",
                "Fine-Gauge",
                "Oversized",
                "Relaxed-Fit",
                "Fisherman",
                "Cropped",
                "Striped",
                "Fair Isle",
            ],
            benefits: &[
                "soft enough to wear against the skin",
                "warm without the bulk",
                "naturally breathable and odour-resistant",
                "knitted to hold its shape wash after wash",
            ],
            details: &[
                "ribbed cuffs and hem",
                "dropped shoulders",
                "a neat tubular-knit hem",
                "horn-effect buttons",
            ],
        },
        Fabric::KnitAccessory => FabricProfile {
            materials: &[
                "Merino",
                "Cashmere",
                "Lambswool",
                "Alpaca",
                "Recycled Wool",
                "Cotton-Blend",
            ],
            styles: &[
                "Ribbed",
                "Cable-Knit",
                "Chunky",
                "Fair Isle",
                "Waffle-Knit",
                "Striped",
                "Fine-Knit",
                "Slouchy",
            ],
            benefits: &[
                "cosy on the coldest mornings",
                "soft and itch-free",
                "light enough to pack anywhere",
                "warm and naturally breathable",
            ],
            details: &[
                "a generous length",
                "a classic ribbed trim",
                "a soft brushed finish",
                "double-layered knit for extra warmth",
            ],
        },
        Fabric::Jersey => FabricProfile {
            materials: &[
                "Organic Cotton",
                "Pima Cotton",
                "Supima Cotton",
                "Bamboo",
                "Slub Cotton",
                "Recycled Polyester",
                "Brushed Fleece",
                "French Terry",
                "Tri-Blend",
            ],
            styles: &[
                "Relaxed-Fit",
                "Slim-Fit",
                "Classic",
                "Oversized",
                "Heavyweight",
                "Lightweight",
                "Garment-Dyed",
                "Cropped",
                "Essential",
                "Vintage-Wash",
            ],
            benefits: &[
                "soft from the very first wear",
                "breathable enough for warm days",
                "pre-shrunk so the fit stays true",
                "made for easy layering",
            ],
            details: &[
                "a taped neckline",
                "flat-lock seams",
                "a tagless label",
                "a softly brushed interior",
            ],
        },
        Fabric::Shirting => FabricProfile {
            materials: &[
                "Linen",
                "Cotton Poplin",
                "Chambray",
                "Flannel",
                "Silk",
                "Oxford Cotton",
                "Seersucker",
                "Tencel",
                "Viscose",
                "Linen-Cotton",
            ],
            styles: &[
                "Relaxed-Fit",
                "Slim-Fit",
                "Classic",
                "Short-Sleeve",
                "Long-Sleeve",
                "Tailored",
                "Boxy",
                "Striped",
                "Gingham",
                "Washed",
                "Printed",
            ],
            benefits: &[
                "crisp yet comfortable all day",
                "light and breathable in the heat",
                "easy to dress up or down",
                "garment-washed for a lived-in softness",
            ],
            details: &[
                "mother-of-pearl buttons",
                "a chest pocket",
                "a curved hem",
                "French seams throughout",
            ],
        },
        Fabric::Bottoms => FabricProfile {
            materials: &[
                "Cotton Twill",
                "Stretch Denim",
                "Selvedge Denim",
                "Linen",
                "Corduroy",
                "Wool-Blend",
                "Ripstop",
                "Organic Cotton",
                "Rigid Denim",
            ],
            styles: &[
                "Slim-Fit",
                "Straight-Leg",
                "Relaxed-Fit",
                "Tapered",
                "High-Rise",
                "Pleated",
                "Wide-Leg",
                "Cropped",
                "Washed",
                "Classic",
            ],
            benefits: &[
                "with just enough stretch to move in",
                "built to soften and fade with wear",
                "comfortable from desk to dinner",
                "tough enough for everyday wear",
            ],
            details: &[
                "a button fly",
                "deep front pockets",
                "reinforced bar-tacks",
                "a hidden coin pocket",
            ],
        },
        Fabric::Outerwear => FabricProfile {
            materials: &[
                "Waxed Cotton",
                "Recycled Nylon",
                "Wool-Blend",
                "Technical Shell",
                "Cotton Canvas",
                "Ripstop Nylon",
                "Melton Wool",
                "Corduroy",
                "Recycled Polyester",
            ],
            styles: &[
                "Hooded",
                "Packable",
                "Lightweight",
                "Insulated",
                "Longline",
                "Cropped",
                "Classic",
                "Quilted",
                "Utility",
                "Waterproof",
                "Sherpa-Lined",
                "Storm-Proof",
            ],
            benefits: &[
                "keeps wind and showers out",
                "warm enough for crisp autumn days",
                "packs down small for travel",
                "built for seasons of wear",
            ],
            details: &[
                "a two-way zip",
                "fleece-lined hand pockets",
                "an adjustable hood",
                "taped seams",
                "an internal media pocket",
            ],
        },
        Fabric::Footwear => FabricProfile {
            materials: &[
                "Leather",
                "Suede",
                "Canvas",
                "Knit",
                "Vegan Leather",
                "Nubuck",
                "Recycled Mesh",
            ],
            styles: &[
                "Classic",
                "Lightweight",
                "Cushioned",
                "Minimalist",
                "Lug-Sole",
                "Water-Resistant",
                "Handcrafted",
                "Everyday",
                "Retro",
            ],
            benefits: &[
                "comfortable straight out of the box",
                "made to walk in all day",
                "grippy on wet pavements",
                "easy to slip on and go",
            ],
            details: &[
                "a cushioned footbed",
                "a durable rubber outsole",
                "a padded collar",
                "Goodyear-welted construction",
            ],
        },
        Fabric::Accessory => FabricProfile {
            materials: &[
                "Full-Grain Leather",
                "Canvas",
                "Organic Cotton",
                "Merino",
                "Waxed Cotton",
                "Recycled Nylon",
                "Cotton Twill",
            ],
            styles: &[
                "Classic",
                "Minimalist",
                "Everyday",
                "Reversible",
                "Embroidered",
                "Woven",
                "Slim",
                "Vintage",
            ],
            benefits: &[
                "made to age beautifully",
                "an easy finishing touch for any outfit",
                "sturdy enough for daily use",
                "a small luxury you will use every day",
            ],
            details: &[
                "a solid brass fitting",
                "reinforced stitching",
                "a soft-touch lining",
                "a subtle embossed logo",
            ],
        },
    }
}

#[rustfmt::skip]
const CLOTHING_BRANDS: &[&str] = &[
    "Northfield", "Hollis & Reed", "Ashby", "Fernwood", "Marlowe", "Cobalt Thread", "Wren & Co.",
    "Saltmarsh", "Juniper Lane", "Alder", "Tidewater", "Bramble", "Larkspur", "Oxbow", "Greyhaven",
    "Kittering", "Loomhouse", "Common Thread", "Harbour & Hide", "Ember Row", "Quill & Fox",
    "Stonebridge", "Mossgrove", "Calder", "Pinewell", "Heron Bay",
];

#[rustfmt::skip]
const CLOTHING_COLORS: &[&str] = &[
    "Navy", "Charcoal", "Heather Grey", "Oatmeal", "Olive", "Rust", "Black", "Ivory", "Burgundy",
    "Sage", "Camel", "Indigo", "Forest Green", "Dusty Rose", "Mustard", "Sky Blue", "White",
    "Chocolate", "Ecru", "Slate",
];

const LETTER_SIZES: &[&str] = &["XS", "S", "M", "L", "XL", "XXL"];
const WAIST_SIZES: &[&str] = &["28", "30", "32", "34", "36", "38", "40"];
const SHOE_SIZES: &[&str] = &[
    "36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46",
];

fn size_run(rng: &mut StdRng, run: SizeRun) -> Value {
    let (sizes, first, last): (&[&str], _, _) = match run {
        SizeRun::Letter => (
            LETTER_SIZES,
            rng.random_range(0..=1),
            rng.random_range(3..=5),
        ),
        SizeRun::Waist => (
            WAIST_SIZES,
            rng.random_range(0..=1),
            rng.random_range(4..=6),
        ),
        SizeRun::Shoe => (
            SHOE_SIZES,
            rng.random_range(0..=4),
            rng.random_range(6..=10),
        ),
        SizeRun::OneSize => (&["One Size"], 0, 0),
    };
    Value::Array(
        sizes[first..=last]
            .iter()
            .map(|&s| Value::from(s))
            .collect(),
    )
}

fn clothing(rng: &mut StdRng) -> Draft {
    let item = &GARMENTS[rng.random_range(0..GARMENTS.len())];
    let profile = fabric_profile(item.fabric);
    let material = pick(rng, profile.materials);
    let style = pick(rng, profile.styles);
    let color = pick(rng, CLOTHING_COLORS);
    let noun = item.noun;

    let base = if rng.random_bool(0.5) {
        format!("{material} {style} {noun}")
    } else {
        format!("{style} {material} {noun}")
    };
    let name = match rng.random_range(0..20) {
        0..=14 => format!("{} {base}", pick(rng, CLOTHING_BRANDS)),
        15..=17 => format!("{base}, {color}"),
        _ => base,
    };

    let benefit = pick(rng, profile.benefits);
    let [d1, d2] = pick_distinct::<2>(rng, profile.details);
    let intro = format!(
        "{} in {}, {benefit}.",
        opening(style, noun),
        material.to_lowercase(),
    );
    let finish = match rng.random_range(0..3) {
        0 => format!("Finished with {d1} and {d2}."),
        1 => format!("Details include {d1} and {d2}."),
        _ => format!("Shown in {}, with {d1}.", color.to_lowercase()),
    };
    let closing = pick(
        rng,
        &[
            "Machine washable at 30 degrees.",
            "True to size; size up for a looser fit.",
            "Ethically made in a certified factory.",
            "Pairs easily with the rest of your wardrobe.",
            "Gentle hand wash or dry clean.",
        ],
    );

    let mut attributes = Map::new();
    attributes.insert("sizes".into(), size_run(rng, item.sizes));
    attributes.insert("color".into(), color.into());
    attributes.insert("material".into(), material.into());
    Draft {
        name,
        description: format!("{intro} {finish} {closing}"),
        price_cents: price_cents(rng, item.usd),
        tags: [
            Some(item.tag),
            rng.random_bool(0.5).then_some(material),
            promo_tag(rng),
            None,
        ],
        attributes,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Shelf {
    Fiction,
    Cookbook,
    History,
    Science,
    SelfHelp,
    Travel,
    Children,
}

struct Genre {
    tag: &'static str,
    shelf: Shelf,
    /// How the blurb names the book: "a gripping {kind}".
    kind: &'static str,
}

const fn genre(tag: &'static str, shelf: Shelf, kind: &'static str) -> Genre {
    Genre { tag, shelf, kind }
}

/// Relative frequency of each entry of [`GENRES`]: fiction outsells the rest.
const GENRE_WEIGHTS: [u32; 14] = [12, 12, 10, 9, 8, 9, 8, 4, 4, 4, 4, 3, 3, 6];

const GENRES: &[Genre] = &[
    genre("literary fiction", Shelf::Fiction, "literary novel"),
    genre("mystery", Shelf::Fiction, "mystery"),
    genre("thriller", Shelf::Fiction, "thriller"),
    genre("fantasy", Shelf::Fiction, "fantasy novel"),
    genre("science fiction", Shelf::Fiction, "science-fiction novel"),
    genre("romance", Shelf::Fiction, "love story"),
    genre("historical fiction", Shelf::Fiction, "historical novel"),
    genre("cookbook", Shelf::Cookbook, "cookbook"),
    genre("history", Shelf::History, "history"),
    genre("popular science", Shelf::Science, "science book"),
    genre("self-help", Shelf::SelfHelp, "guide"),
    genre("business", Shelf::SelfHelp, "business book"),
    genre("travel", Shelf::Travel, "travel guide"),
    genre("kids", Shelf::Children, "picture book"),
];

#[rustfmt::skip]
const TITLE_ADJECTIVES: &[&str] = &[
    "Quiet", "Silent", "Hidden", "Burning", "Forgotten", "Last", "Winter", "Distant", "Golden",
    "Broken", "Hollow", "Secret", "Wild", "Drowned", "Paper", "Glass", "Midnight", "Crimson",
    "Lonely", "Bright", "Long", "Iron", "Salt", "Velvet", "Shattered", "Northern", "Lost",
    "Sleeping", "Painted", "Little", "Summer", "Invisible", "Scarlet", "Amber", "Wandering",
    "Borrowed", "Unquiet", "Vanishing", "Starlit", "Bitter", "Gilded", "Frozen", "Restless",
    "Hungry", "Ash", "Copper", "Evening", "Open", "Stolen", "Tender",
];

#[rustfmt::skip]
const TITLE_NOUNS: &[&str] = &[
    "Orchard", "River", "Lighthouse", "Garden", "Harbor", "Kingdom", "Letter", "Promise", "Shore",
    "Crown", "Forest", "Island", "Mirror", "Bridge", "Season", "Station", "Sky", "Archive",
    "Cartographer", "Widow", "Daughter", "Storm", "Tide", "Lantern", "House", "Road", "Song", "Map",
    "Key", "Clockmaker", "Valley", "Ember", "Feather", "Orchestra", "Beekeeper", "Hour", "Painter",
    "Ferryman", "Vineyard", "Comet", "Lighthouse Keeper", "Apprentice", "Glassblower", "Tailor",
    "Inheritance", "Labyrinth", "Meadow", "Cathedral", "Nightingale", "Observatory", "Atlas",
    "Moth", "Ballroom", "Greenhouse", "Quarry", "Pilgrim", "Sister", "Winterhouse", "Heiress",
    "Tidewater",
];

#[rustfmt::skip]
const TITLE_PLACES: &[&str] = &[
    "Ashford", "Halloway", "the North", "Lisbon", "Marrow Bay", "Eden Falls", "Kestrel Point",
    "Saint-Malo", "the Valley", "Blackwater", "Prague", "Willow Creek", "the Fens", "Alder Cove",
    "Wolf Hollow", "Port Avery", "Little Haven", "the Salt Marshes", "Ravenscar", "Lake Orta",
    "the Old Quarter", "Brightwater", "Saltcombe", "the Hollow Hills", "Vienna", "Harrowgate",
    "Pelican Bay", "Cape Mercy", "Larkhill", "the Lowlands",
];

const FIRST_NAMES: &[&str] = &[
    "Ada", "Elias", "Mira", "Theo", "Juniper", "Nora", "Felix", "Iris", "Silas", "Hazel", "Jonah",
    "Clara", "Rowan", "Wren", "Amara", "Daniel", "Priya", "Tomas", "Lena", "Marcus", "Sofia",
    "Kenji", "Helena", "Omar", "Grace", "Malcolm", "Ingrid", "Rafael", "Yara", "Owen",
];

#[rustfmt::skip]
const LAST_NAMES: &[&str] = &[
    "Whitlock", "Okafor", "Lindqvist", "Moreau", "Castellanos", "Hart", "Nakamura", "Brennan",
    "Adeyemi", "Sorensen", "Delacroix", "Patel", "Gallagher", "Novak", "Ashworth", "Reyes",
    "Fairbairn", "Kowalski", "Achterberg", "Mbeki", "Thorne", "Vasquez", "Holloway", "Osei",
    "Lindgren", "Carrow", "Ibarra", "Quinn", "Sato", "Pemberton", "Eriksen", "Marchetti",
    "Blackwood", "Duarte", "Kaur", "Winslow", "Haddad", "Fontaine", "Mercer", "Abernathy",
];

#[rustfmt::skip]
const PUBLISHERS: &[&str] = &[
    "Harrow & Finch", "Lanternfield Press", "Bluewater Books", "Greywillow", "Oakleaf Publishing",
    "Meridian House", "Small Hours Press", "Northlight Editions", "Kite & Compass",
    "Fernhill Books",
];

#[rustfmt::skip]
const CUISINES: &[&str] = &[
    "Mediterranean", "Tuscan", "Japanese", "Mexican", "Nordic", "Levantine", "Korean",
    "Plant-Based", "Vietnamese", "Provencal", "Indian", "Persian", "Sicilian", "Basque", "Lebanese",
    "Thai", "Greek", "Georgian", "Portuguese", "Cajun",
];

#[rustfmt::skip]
const COOKBOOK_ADJECTIVES: &[&str] = &[
    "Everyday", "Slow", "Weeknight", "Sunday", "Seasonal", "Family", "Simple", "Generous",
];

#[rustfmt::skip]
const COOKING_OCCASIONS: &[&str] = &[
    "Every Day", "Sharing", "Busy Weeknights", "Slow Weekends", "the Whole Family",
    "Feeding a Crowd",
];

#[rustfmt::skip]
const HISTORY_TOPICS: &[&str] = &[
    "Salt", "Coffee", "Tea", "Paper", "Glass", "Timekeeping", "Cartography", "Medicine",
    "Navigation", "Printing", "Sugar", "Railways", "Lighthouses", "Bridges", "Canals", "Spices",
    "Silk", "Porcelain", "Chess", "Astronomy", "Libraries", "Bread", "Maps", "Soap", "Gunpowder",
    "Clocks", "Wine", "Cotton", "Ink", "Windmills", "Umbrellas", "Money",
];

#[rustfmt::skip]
const SCIENCE_SUBJECTS: &[&str] = &[
    "Trees", "Fungi", "Rivers", "Octopuses", "Bees", "Clouds", "Stars", "Microbes", "Birds",
    "Volcanoes", "Tides", "Seeds", "Whales", "Ants", "Glaciers", "Mountains", "Crows",
    "Coral Reefs", "Moths", "Deserts", "Jellyfish", "Mosses", "Wolves", "Lichens", "Eels",
    "Meteorites", "Owls", "Sharks", "Caves", "Bats",
];

#[rustfmt::skip]
const SKILLS: &[&str] = &[
    "Focus", "Rest", "Negotiation", "Public Speaking", "Slow Living", "Decision-Making",
    "Better Habits", "Leadership", "Saying No", "Creativity", "Resilience", "Time Management",
    "Clear Thinking", "Small Steps", "Difficult Conversations", "Money", "Listening", "Calm",
    "Boundaries", "Motivation", "Learning", "Gratitude", "Starting Over", "Productivity",
];

#[rustfmt::skip]
const REGIONS: &[&str] = &[
    "Patagonia", "the Scottish Highlands", "Andalusia", "the Japanese Alps", "the Amalfi Coast",
    "Iceland", "the Norwegian Fjords", "the Camino de Santiago", "Vietnam", "Morocco", "Tuscany",
    "the Pacific Northwest", "New Zealand", "the Dolomites", "the West of Ireland", "Provence",
    "the Lake District", "Sardinia", "Crete", "the Alps", "Sri Lanka", "Scandinavia", "Cornwall",
    "the Balkans", "Hokkaido", "the Atlas Mountains",
];

#[rustfmt::skip]
const ANIMALS: &[&str] = &[
    "Fox", "Bear", "Owl", "Hedgehog", "Rabbit", "Penguin", "Elephant", "Otter", "Badger", "Tiger",
    "Whale", "Duck", "Mouse", "Giraffe", "Crocodile", "Sloth",
];

const ANIMAL_ADJECTIVES: &[&str] = &[
    "Brave", "Sleepy", "Grumpy", "Tiny", "Curious", "Hungry", "Happy", "Noisy", "Shy", "Busy",
];

#[rustfmt::skip]
const ANIMAL_WISHES: &[&str] = &[
    "Fly", "Dance", "Sing", "Be Tall", "Touch the Moon", "Stay Up Late", "Swim", "Go to School",
    "Make a Friend",
];

#[rustfmt::skip]
const HISTORY_SUBTITLES: &[&str] = &[
    "How One Idea Changed the World", "A Story of Empire and Invention", "From Antiquity to Today",
    "Ten Lives That Shaped an Age", "The Untold Story", "An Illustrated History",
    "Power, Trade and the Modern World", "A Global History", "Lost Stories from the Archives",
    "How Ordinary People Made History",
];

#[rustfmt::skip]
const SCIENCE_SUBTITLES: &[&str] = &[
    "What They Reveal About Our Planet", "A Journey Through Deep Time",
    "The New Science of the Living World", "Discoveries from the Field",
    "Why They Matter More Than Ever", "An Illustrated Guide", "Stories from the Edge of Science",
    "Notes from a Naturalist",
];

#[rustfmt::skip]
const SELF_HELP_SUBTITLES: &[&str] = &[
    "Simple Habits for a Calmer Life", "A 30-Day Plan", "Lessons from Twenty Years of Research",
    "How to Start Small and Keep Going", "A Workbook", "Practical Tools for Busy People",
    "Finding Balance at Work and at Home", "What the Science Really Says",
];

#[rustfmt::skip]
const TRAVEL_SUBTITLES: &[&str] = &[
    "A Walker's Guide", "Routes, Maps and Local Secrets", "Twenty Great Journeys",
    "A Slow Traveller's Notebook", "Where to Stay, Eat and Explore", "Off the Beaten Track",
    "A Year of Seasonal Adventures",
];

/// `title`, usually followed by one of `subtitles`.
fn with_subtitle(rng: &mut StdRng, title: String, subtitles: &[&str]) -> String {
    if title.contains(':') || rng.random_bool(0.2) {
        title
    } else {
        format!("{title}: {}", pick(rng, subtitles))
    }
}

/// A title and the subject the blurb talks about.
fn book_title(rng: &mut StdRng, shelf: Shelf) -> (String, &'static str) {
    match shelf {
        Shelf::Fiction => {
            let adj = pick(rng, TITLE_ADJECTIVES);
            let [noun, noun2] = pick_distinct::<2>(rng, TITLE_NOUNS);
            let place = pick(rng, TITLE_PLACES);
            let title = match rng.random_range(0..10) {
                0 => format!("The {adj} {noun}"),
                1 => format!("The {noun} of {place}"),
                2 => format!(
                    "What the {adj} {noun} {}",
                    pick(
                        rng,
                        &[
                            "Remembers",
                            "Knew",
                            "Carried",
                            "Left Behind",
                            "Kept",
                            "Heard"
                        ]
                    )
                ),
                3 => format!(
                    "{} the {adj} {noun}",
                    pick(
                        rng,
                        &["Beneath", "Beyond", "After", "Across", "Before", "Under"]
                    )
                ),
                4 => format!("The Last {noun} of {place}"),
                5 => format!("{} and the {adj} {noun}", pick(rng, FIRST_NAMES)),
                6 => format!("The {noun}'s {noun2}"),
                7 => format!("{adj} {noun}, {} {noun2}", pick(rng, TITLE_ADJECTIVES)),
                8 => format!("The {adj} {noun} of {place}"),
                _ => format!("The {noun} and the {noun2}"),
            };
            let title = if rng.random_bool(0.12) {
                title + ": A Novel"
            } else {
                title
            };
            (title, place)
        }
        Shelf::Cookbook => {
            let cuisine = pick(rng, CUISINES);
            let adj = pick(rng, COOKBOOK_ADJECTIVES);
            let title = match rng.random_range(0..4) {
                0 => format!(
                    "{adj} {cuisine}: {} Recipes for {}",
                    rng.random_range(6..=15) * 10,
                    pick(rng, COOKING_OCCASIONS)
                ),
                1 => format!("The {adj} {cuisine} Kitchen"),
                2 => format!(
                    "{cuisine} at Home: {} Recipes for {}",
                    rng.random_range(6..=15) * 10,
                    pick(rng, COOKING_OCCASIONS)
                ),
                _ => format!(
                    "The {adj} Table: {cuisine} Cooking for {}",
                    pick(rng, COOKING_OCCASIONS)
                ),
            };
            (title, cuisine)
        }
        Shelf::History => {
            let topic = pick(rng, HISTORY_TOPICS);
            let title = match rng.random_range(0..5) {
                0 => format!("A Short History of {topic}"),
                1 => format!("The Age of {topic}"),
                2 => format!("{topic}: A New History"),
                3 => format!("The Rise and Fall of {topic}"),
                _ => format!(
                    "{topic} and the Making of the {} World",
                    pick(rng, &["Modern", "Atlantic", "Medieval", "Victorian"])
                ),
            };
            (with_subtitle(rng, title, HISTORY_SUBTITLES), topic)
        }
        Shelf::Science => {
            let subject = pick(rng, SCIENCE_SUBJECTS);
            let title = match rng.random_range(0..6) {
                0 => format!("The Hidden Life of {subject}"),
                1 => format!("The Secret World of {subject}"),
                2 => format!("What {subject} Know"),
                3 => format!("{subject}: A Natural History"),
                4 => format!("In Praise of {subject}"),
                _ => format!("The Curious Science of {subject}"),
            };
            (with_subtitle(rng, title, SCIENCE_SUBTITLES), subject)
        }
        Shelf::SelfHelp => {
            let skill = pick(rng, SKILLS);
            let title = match rng.random_range(0..6) {
                0 => format!("The Art of {skill}"),
                1 => format!("{skill} for Beginners"),
                2 => format!(
                    "The {} Guide to {skill}",
                    pick(
                        rng,
                        &["Practical", "Essential", "Modern", "Quiet", "Complete"]
                    )
                ),
                3 => format!("{skill}: A Field Guide"),
                4 => format!("Mastering {skill}"),
                _ => format!("The Little Book of {skill}"),
            };
            (with_subtitle(rng, title, SELF_HELP_SUBTITLES), skill)
        }
        Shelf::Travel => {
            let region = pick(rng, REGIONS);
            let title = match rng.random_range(0..6) {
                0 => format!("Walking {region}"),
                1 => format!("Slow Travel in {region}"),
                2 => format!("A Year in {region}"),
                3 => format!("Beyond {region}"),
                4 => format!("Cycling {region}"),
                _ => format!("{}: A Traveller's Companion", capitalize(region)),
            };
            (with_subtitle(rng, title, TRAVEL_SUBTITLES), region)
        }
        Shelf::Children => {
            let [animal, animal2] = pick_distinct::<2>(rng, ANIMALS);
            let [adj, adj2] = pick_distinct::<2>(rng, ANIMAL_ADJECTIVES);
            let title = match rng.random_range(0..5) {
                0 => format!(
                    "The {adj} {animal} Who Wanted to {}",
                    pick(rng, ANIMAL_WISHES)
                ),
                1 => format!("Goodnight, {} the {animal}", pick(rng, FIRST_NAMES)),
                2 => format!("{} the {adj} {animal}", pick(rng, FIRST_NAMES)),
                3 => format!("{} and the {adj} {animal}", pick(rng, FIRST_NAMES)),
                _ => format!("The {adj} {animal} and the {adj2} {animal2}"),
            };
            (title, animal)
        }
    }
}

fn book_blurb(rng: &mut StdRng, genre: &Genre, subject: &str, author: &str) -> String {
    match genre.shelf {
        Shelf::Fiction => {
            let hero = pick(
                rng,
                &[
                    "a reclusive lighthouse keeper",
                    "a young cartographer",
                    "an estranged younger sister",
                    "a retired detective",
                    "a disgraced court musician",
                    "an apprentice clockmaker",
                    "a widowed beekeeper",
                    "a ship's last engineer",
                    "a small-town librarian",
                    "a runaway heir",
                ],
            );
            let event = match rng.random_range(0..6) {
                0 => "finds a letter that was never sent".to_owned(),
                1 => format!("returns to {subject} after twenty years"),
                2 => "inherits a house full of locked rooms".to_owned(),
                3 => "is asked to find a child who vanished in the night".to_owned(),
                4 => "receives a map bearing their own name".to_owned(),
                _ => format!("witnesses something impossible on the road out of {subject}"),
            };
            let consequence = pick(
                rng,
                &[
                    "long-buried secrets begin to surface",
                    "nothing about the past is quite as it seemed",
                    "a quiet community is forced to reckon with its history",
                    "an unlikely friendship changes everything",
                    "the line between loyalty and betrayal starts to blur",
                ],
            );
            let praise = pick(
                rng,
                &[
                    "luminous",
                    "gripping",
                    "tender",
                    "propulsive",
                    "haunting",
                    "warm-hearted",
                    "atmospheric",
                    "sweeping",
                ],
            );
            let theme = pick(
                rng,
                &[
                    "memory and belonging",
                    "grief and second chances",
                    "family, secrets and forgiveness",
                    "ambition and its price",
                    "love across time",
                    "courage in dark times",
                ],
            );
            format!(
                "When {hero} {event}, {consequence}. {} {praise} {} about {theme}.",
                capitalize(article(praise)),
                genre.kind
            )
        }
        Shelf::Cookbook => {
            let [d1, d2] = pick_distinct::<2>(
                rng,
                &[
                    "quick weeknight suppers",
                    "slow-cooked stews",
                    "bright seasonal salads",
                    "fresh breads",
                    "show-stopping desserts",
                    "simple snacks",
                    "one-pan dinners",
                ],
            );
            format!(
                "{} recipes celebrating {} home cooking, from {d1} to {d2}. {author} shares the techniques, pantry staples and stories behind each dish.",
                rng.random_range(6..=15) * 10,
                subject.to_lowercase(),
            )
        }
        Shelf::History => format!(
            "A vivid, deeply researched account of {} and the people whose lives it changed. {author} follows the story across continents and centuries.",
            subject.to_lowercase()
        ),
        Shelf::Science => format!(
            "An accessible, wonder-filled tour of {} and the science behind them, written for curious readers of every background.",
            subject.to_lowercase()
        ),
        Shelf::SelfHelp => format!(
            "Practical, research-backed advice on {}, with short exercises you can start today. {author} draws on years of coaching and interviews.",
            subject.to_lowercase()
        ),
        Shelf::Travel => format!(
            "Routes, maps and local knowledge for exploring {subject} at your own pace, from well-known highlights to quiet corners most visitors miss."
        ),
        Shelf::Children => format!(
            "A gently funny {} about a {} {}, friendship and trying new things, with bright full-colour illustrations.",
            genre.kind,
            pick(rng, &["little", "determined", "brave", "curious"]),
            subject.to_lowercase()
        ),
    }
}

/// An ISBN-13 with a valid check digit.
fn isbn13(rng: &mut StdRng) -> String {
    let mut digits = [0u8; 13];
    digits[..3].copy_from_slice(if rng.random_bool(0.85) {
        &[9, 7, 8]
    } else {
        &[9, 7, 9]
    });
    for d in &mut digits[3..12] {
        *d = rng.random_range(0..10);
    }
    let sum: u32 = digits[..12]
        .iter()
        .enumerate()
        .map(|(i, &d)| u32::from(d) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    digits[12] = ((10 - sum % 10) % 10) as u8;
    digits.iter().map(|&d| char::from(b'0' + d)).collect()
}

fn book(rng: &mut StdRng) -> Draft {
    let genre = &GENRES[weighted(rng, &GENRE_WEIGHTS)];
    let (title, subject) = book_title(rng, genre.shelf);
    let author = format!("{} {}", pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES));
    let (format_name, usd) = if genre.shelf == Shelf::Children {
        match weighted(rng, &[40, 35, 25]) {
            0 => ("Hardcover", (12, 25)),
            1 => ("Board Book", (8, 14)),
            _ => ("Paperback", (8, 12)),
        }
    } else {
        match weighted(rng, &[50, 30, 12, 8]) {
            0 => ("Paperback", (9, 22)),
            1 if genre.shelf == Shelf::Cookbook => ("Hardcover", (25, 60)),
            1 => ("Hardcover", (18, 45)),
            2 => ("Mass Market Paperback", (8, 12)),
            _ => ("Large Print", (16, 32)),
        }
    };
    let pages: u32 = match genre.shelf {
        Shelf::Fiction => rng.random_range(110..=320) * 2,
        Shelf::Cookbook => rng.random_range(96..=200) * 2,
        Shelf::History => rng.random_range(144..=360) * 2,
        Shelf::Science => rng.random_range(120..=210) * 2,
        Shelf::SelfHelp => rng.random_range(80..=160) * 2,
        Shelf::Travel => rng.random_range(96..=180) * 2,
        Shelf::Children => rng.random_range(3..=6) * 8,
    };
    let blurb = book_blurb(rng, genre, subject, &author);

    let mut attributes = Map::new();
    attributes.insert("author".into(), author.as_str().into());
    attributes.insert("pages".into(), pages.into());
    attributes.insert("format".into(), format_name.into());
    attributes.insert("isbn13".into(), isbn13(rng).into());
    attributes.insert("genre".into(), genre.tag.into());
    attributes.insert("publisher".into(), pick(rng, PUBLISHERS).into());
    attributes.insert("publishedYear".into(), rng.random_range(1998..=2025).into());
    attributes.insert("language".into(), "English".into());
    Draft {
        name: format!("{title} ({format_name})"),
        description: format!("{blurb} {format_name} edition, {pages} pages."),
        price_cents: price_cents(rng, usd),
        tags: [
            Some(genre.tag),
            Some(match genre.shelf {
                Shelf::Fiction => "fiction",
                Shelf::Children => "picture books",
                _ => "non-fiction",
            }),
            (format_name == "Hardcover").then_some("hardcover"),
            promo_tag(rng),
        ],
        attributes,
    }
}

#[derive(Clone, Copy)]
enum Room {
    Furniture,
    Textile,
    Tableware,
    Cookware,
    KitchenTools,
    Lighting,
    Decor,
}

struct HomeItem {
    noun: &'static str,
    tag: &'static str,
    room: Room,
    usd: (u32, u32),
    /// Width, height and depth ranges in centimetres.
    dims: [(u16, u16); 3],
}

const fn home_item(
    noun: &'static str,
    tag: &'static str,
    room: Room,
    usd: (u32, u32),
    dims: [(u16, u16); 3],
) -> HomeItem {
    HomeItem {
        noun,
        tag,
        room,
        usd,
        dims,
    }
}

#[rustfmt::skip]
const HOME_ITEMS: &[HomeItem] = &[
    home_item("Side Table", "tables", Room::Furniture, (59, 349), [(35, 60), (45, 65), (35, 60)]),
    home_item("Coffee Table", "tables", Room::Furniture, (129, 899), [(80, 140), (35, 48), (45, 80)]),
    home_item("Bookshelf", "shelving", Room::Furniture, (99, 699), [(60, 120), (90, 200), (25, 40)]),
    home_item("Nightstand", "bedroom", Room::Furniture, (79, 399), [(40, 60), (45, 65), (30, 45)]),
    home_item("Dining Chair", "seating", Room::Furniture, (69, 349), [(42, 55), (76, 90), (45, 56)]),
    home_item("Bar Stool", "seating", Room::Furniture, (59, 249), [(35, 45), (65, 80), (35, 45)]),
    home_item("Console Table", "tables", Room::Furniture, (129, 699), [(90, 160), (75, 85), (30, 40)]),
    home_item("TV Stand", "living room", Room::Furniture, (119, 799), [(120, 200), (40, 60), (35, 45)]),
    home_item("Floating Shelf", "shelving", Room::Furniture, (25, 129), [(40, 120), (3, 6), (15, 25)]),
    home_item("Writing Desk", "office", Room::Furniture, (149, 899), [(90, 160), (73, 78), (50, 75)]),
    home_item("Entryway Bench", "seating", Room::Furniture, (89, 449), [(80, 140), (42, 50), (30, 45)]),
    home_item("Chest of Drawers", "bedroom", Room::Furniture, (199, 900), [(70, 140), (75, 120), (40, 50)]),
    home_item("Throw Blanket", "throws", Room::Textile, (29, 189), [(125, 150), (1, 2), (150, 200)]),
    home_item("Duvet Cover Set", "bedding", Room::Textile, (49, 299), [(135, 260), (1, 2), (200, 230)]),
    home_item("Cushion Cover", "cushions", Room::Textile, (12, 59), [(40, 60), (1, 2), (40, 60)]),
    home_item("Bath Towel Set", "bath", Room::Textile, (29, 149), [(70, 100), (1, 2), (130, 150)]),
    home_item("Area Rug", "rugs", Room::Textile, (69, 899), [(120, 300), (1, 3), (170, 400)]),
    home_item("Curtain Panels (Pair)", "window", Room::Textile, (39, 249), [(130, 150), (1, 2), (200, 260)]),
    home_item("Table Runner", "dining", Room::Textile, (15, 69), [(30, 45), (1, 2), (150, 250)]),
    home_item("Sheet Set", "bedding", Room::Textile, (45, 279), [(150, 270), (1, 2), (200, 280)]),
    home_item("Bath Mat", "bath", Room::Textile, (15, 69), [(50, 60), (1, 3), (80, 90)]),
    home_item("Quilt", "bedding", Room::Textile, (69, 349), [(150, 260), (1, 2), (200, 240)]),
    home_item("Dinner Plates (Set of 4)", "dinnerware", Room::Tableware, (29, 129), [(26, 28), (2, 3), (26, 28)]),
    home_item("Pasta Bowls (Set of 4)", "dinnerware", Room::Tableware, (29, 119), [(20, 24), (5, 7), (20, 24)]),
    home_item("Coffee Mugs (Set of 4)", "mugs", Room::Tableware, (19, 89), [(8, 10), (9, 12), (8, 10)]),
    home_item("Serving Platter", "serveware", Room::Tableware, (25, 119), [(30, 45), (2, 5), (20, 30)]),
    home_item("Salad Bowl", "serveware", Room::Tableware, (25, 99), [(25, 32), (9, 13), (25, 32)]),
    home_item("Dinnerware Set (16-Piece)", "dinnerware", Room::Tableware, (79, 349), [(30, 40), (25, 35), (30, 40)]),
    home_item("Espresso Cups (Set of 2)", "mugs", Room::Tableware, (15, 59), [(6, 8), (5, 7), (6, 8)]),
    home_item("Teapot", "tea", Room::Tableware, (25, 119), [(18, 24), (13, 18), (12, 16)]),
    home_item("Skillet", "cookware", Room::Cookware, (29, 199), [(26, 32), (5, 7), (40, 52)]),
    home_item("Dutch Oven", "cookware", Room::Cookware, (59, 399), [(28, 34), (15, 20), (28, 34)]),
    home_item("Saucepan", "cookware", Room::Cookware, (29, 179), [(18, 22), (10, 13), (35, 42)]),
    home_item("Stockpot", "cookware", Room::Cookware, (39, 219), [(26, 32), (20, 26), (26, 32)]),
    home_item("Saute Pan", "cookware", Room::Cookware, (39, 229), [(26, 30), (7, 9), (45, 52)]),
    home_item("Wok", "cookware", Room::Cookware, (29, 169), [(30, 36), (9, 11), (50, 60)]),
    home_item("Roasting Pan", "bakeware", Room::Cookware, (29, 199), [(38, 45), (7, 10), (28, 33)]),
    home_item("Stovetop Kettle", "tea", Room::Cookware, (29, 149), [(20, 24), (20, 25), (18, 22)]),
    home_item("Cookware Set (10-Piece)", "cookware", Room::Cookware, (149, 900), [(50, 60), (30, 40), (35, 45)]),
    home_item("Cutting Board", "prep", Room::KitchenTools, (19, 129), [(30, 50), (2, 4), (20, 35)]),
    home_item("Utensil Set", "utensils", Room::KitchenTools, (19, 79), [(10, 15), (30, 35), (10, 15)]),
    home_item("Spice Rack", "storage", Room::KitchenTools, (25, 99), [(30, 45), (25, 40), (8, 12)]),
    home_item("Knife Block", "knives", Room::KitchenTools, (29, 149), [(12, 18), (22, 28), (15, 22)]),
    home_item("Salad Servers", "serveware", Room::KitchenTools, (15, 49), [(6, 8), (1, 2), (28, 32)]),
    home_item("Rolling Pin", "baking", Room::KitchenTools, (12, 49), [(40, 50), (5, 6), (5, 6)]),
    home_item("Mortar and Pestle", "prep", Room::KitchenTools, (19, 79), [(12, 16), (8, 12), (12, 16)]),
    home_item("Bread Bin", "storage", Room::KitchenTools, (29, 119), [(35, 45), (18, 25), (22, 28)]),
    home_item("Table Lamp", "lamps", Room::Lighting, (39, 349), [(20, 40), (35, 65), (20, 40)]),
    home_item("Floor Lamp", "lamps", Room::Lighting, (79, 599), [(30, 50), (140, 180), (30, 50)]),
    home_item("Pendant Light", "ceiling lights", Room::Lighting, (49, 449), [(25, 60), (20, 40), (25, 60)]),
    home_item("Wall Sconce", "wall lights", Room::Lighting, (39, 249), [(10, 20), (20, 35), (12, 22)]),
    home_item("Desk Lamp", "lamps", Room::Lighting, (29, 199), [(15, 25), (35, 50), (15, 25)]),
    home_item("Vase", "vases", Room::Decor, (15, 149), [(10, 25), (20, 45), (10, 25)]),
    home_item("Planter", "plants", Room::Decor, (15, 129), [(15, 35), (15, 35), (15, 35)]),
    home_item("Candle Holder", "candles", Room::Decor, (12, 69), [(6, 12), (8, 25), (6, 12)]),
    home_item("Wall Mirror", "mirrors", Room::Decor, (49, 449), [(40, 90), (60, 160), (2, 4)]),
    home_item("Wall Clock", "clocks", Room::Decor, (25, 149), [(30, 45), (30, 45), (4, 6)]),
    home_item("Picture Frame", "frames", Room::Decor, (12, 69), [(20, 50), (25, 60), (2, 3)]),
    home_item("Storage Basket", "storage", Room::Decor, (19, 89), [(25, 45), (20, 35), (25, 45)]),
    home_item("Decorative Bowl", "decor", Room::Decor, (19, 99), [(20, 35), (6, 12), (20, 35)]),
    home_item("Bookends (Pair)", "decor", Room::Decor, (19, 79), [(10, 15), (14, 20), (8, 12)]),
];

struct RoomProfile {
    tag: &'static str,
    materials: &'static [&'static str],
    styles: &'static [&'static str],
    benefits: &'static [&'static str],
    care: &'static [&'static str],
}

const fn room_profile(room: Room) -> RoomProfile {
    match room {
        Room::Furniture => RoomProfile {
            tag: "furniture",
            materials: &[
                "Solid Oak",
                "Walnut",
                "Acacia Wood",
                "Bamboo",
                "Reclaimed Pine",
                "Powder-Coated Steel",
                "Rattan",
                "Mango Wood",
                "Ash Wood",
                "Teak",
            ],
            styles: &[
                "Mid-Century",
                "Scandinavian",
                "Industrial",
                "Farmhouse",
                "Minimalist",
                "Modern",
                "Rustic",
                "Japandi",
                "Coastal",
                "Art Deco",
            ],
            benefits: &[
                "built to last for years",
                "sturdy enough for everyday family life",
                "with clean lines that suit any room",
                "easy to assemble in under 20 minutes",
            ],
            care: &[
                "Wipe with a soft, dry cloth.",
                "Finished with a water-based lacquer.",
                "Ships flat-packed with all fittings included.",
                "Each piece shows natural variation in grain.",
            ],
        },
        Room::Textile => RoomProfile {
            tag: "textiles",
            materials: &[
                "Linen",
                "Cotton Percale",
                "Cotton Sateen",
                "Turkish Cotton",
                "Cotton Gauze",
                "Wool",
                "Velvet",
                "Waffle-Weave Cotton",
                "Boucle",
                "Organic Cotton",
                "Bamboo Lyocell",
            ],
            styles: &[
                "Stonewashed",
                "Striped",
                "Herringbone",
                "Geometric",
                "Tasseled",
                "Boho",
                "Solid",
                "Plaid",
                "Textured",
                "Fringed",
                "Embroidered",
            ],
            benefits: &[
                "made to get softer with every wash",
                "breathable and cosy in every season",
                "for added warmth and texture in any room",
                "woven for everyday comfort",
            ],
            care: &[
                "Machine washable at 40 degrees.",
                "OEKO-TEX certified.",
                "Tumble dry low.",
                "Spot clean only.",
            ],
        },
        Room::Tableware => RoomProfile {
            tag: "kitchen",
            materials: &[
                "Stoneware",
                "Porcelain",
                "Ceramic",
                "Bone China",
                "Recycled Glass",
                "Terracotta",
                "Enamelware",
            ],
            styles: &[
                "Speckled",
                "Matte",
                "Hand-Glazed",
                "Reactive-Glaze",
                "Ribbed",
                "Classic",
                "Rustic",
                "Scalloped",
                "Minimalist",
                "Two-Tone",
            ],
            benefits: &[
                "made for everyday meals and long dinners alike",
                "with a glaze that makes every piece unique",
                "designed to stack neatly in the cupboard",
                "durable enough for daily use",
            ],
            care: &[
                "Dishwasher and microwave safe.",
                "Hand wash recommended.",
                "Lead- and cadmium-free.",
                "Each piece is glazed by hand.",
            ],
        },
        Room::Cookware => RoomProfile {
            tag: "kitchen",
            materials: &[
                "Cast Iron",
                "Enameled Cast Iron",
                "Stainless Steel",
                "Tri-Ply Stainless",
                "Carbon Steel",
                "Hard-Anodized Aluminium",
                "Copper",
            ],
            styles: &[
                "Professional",
                "Classic",
                "Induction-Ready",
                "Heavy-Duty",
                "Everyday",
                "Chef's",
                "Lightweight",
                "Oven-Safe",
            ],
            benefits: &[
                "designed to heat quickly and evenly",
                "built to go from hob to oven to table",
                "made to last a lifetime of cooking",
                "suitable for all hobs, including induction",
            ],
            care: &[
                "Oven safe to 260 degrees C.",
                "Hand wash and dry thoroughly.",
                "Dishwasher safe.",
                "Comes with a lifetime warranty.",
            ],
        },
        Room::KitchenTools => RoomProfile {
            tag: "kitchen",
            materials: &[
                "Olive Wood",
                "Acacia Wood",
                "Stainless Steel",
                "Bamboo",
                "Silicone",
                "Walnut",
                "Marble",
            ],
            styles: &[
                "Classic",
                "Professional",
                "Everyday",
                "Hand-Finished",
                "Ergonomic",
                "Compact",
                "Essential",
            ],
            benefits: &[
                "worthy of a place on any counter",
                "built for daily prep",
                "designed by professional chefs",
                "designed to make cooking a little easier",
            ],
            care: &[
                "Hand wash only.",
                "Oil occasionally to keep the wood nourished.",
                "Dishwasher safe.",
                "Food-safe finish.",
            ],
        },
        Room::Lighting => RoomProfile {
            tag: "lighting",
            materials: &[
                "Brass",
                "Rattan",
                "Ceramic",
                "Opal Glass",
                "Linen",
                "Matte Black Metal",
                "Paper",
                "Oak",
            ],
            styles: &[
                "Arched",
                "Globe",
                "Fluted",
                "Dome",
                "Mushroom",
                "Minimalist",
                "Vintage",
                "Sculptural",
                "Tripod",
                "Pleated",
            ],
            benefits: &[
                "for a soft, warm glow",
                "with a dimmable switch for every mood",
                "designed to double as a sculptural accent",
                "for focused or ambient light",
            ],
            care: &[
                "Compatible with E27 LED bulbs (not included).",
                "Includes a 2 m fabric cable.",
                "Bulb included.",
                "Dust with a soft, dry cloth.",
            ],
        },
        Room::Decor => RoomProfile {
            tag: "decor",
            materials: &[
                "Terracotta",
                "Ceramic",
                "Recycled Glass",
                "Brass",
                "Concrete",
                "Seagrass",
                "Marble",
                "Stoneware",
                "Rattan",
            ],
            styles: &[
                "Fluted",
                "Round",
                "Woven",
                "Sculptural",
                "Vintage",
                "Minimalist",
                "Hand-Thrown",
                "Textured",
                "Geometric",
                "Organic",
            ],
            benefits: &[
                "made to bring character to a shelf or sideboard",
                "handmade by small artisan workshops",
                "designed to pair well with natural materials",
                "for an easy, finishing touch",
            ],
            care: &[
                "Wipe clean with a damp cloth.",
                "Each piece is one of a kind.",
                "Arrives gift-ready.",
                "For indoor use.",
            ],
        },
    }
}

#[rustfmt::skip]
const HOME_BRANDS: &[&str] = &[
    "Hearthstone", "Linden & Lane", "Oakhollow", "Casa Calma", "Nordby", "Ember & Ash", "Haven",
    "Kiln & Co.", "Wildacre", "Stillroom", "Birch & Bloom", "Hollowell", "Sundial Home",
    "Tessellate", "Willowmere", "Cottonwood", "Oaken", "Lumiere Living", "Harbor House",
    "Kindred Home",
];

#[rustfmt::skip]
const HOME_COLORS: &[&str] = &[
    "Natural", "Charcoal", "Warm White", "Sage Green", "Terracotta", "Navy", "Sand", "Walnut Brown",
    "Black", "Oatmeal", "Dusty Pink", "Ochre", "Slate Blue", "Cream", "Olive",
];

fn home(rng: &mut StdRng) -> Draft {
    let item = &HOME_ITEMS[rng.random_range(0..HOME_ITEMS.len())];
    let profile = room_profile(item.room);
    let material = pick(rng, profile.materials);
    let style = pick(rng, profile.styles);
    let color = pick(rng, HOME_COLORS);
    let [w, h, d] = item.dims.map(|(lo, hi)| rng.random_range(lo..=hi));
    let noun = item.noun;

    let base = format!("{style} {material} {noun}");
    let name = match rng.random_range(0..10) {
        0..=6 => format!("{} {base}", pick(rng, HOME_BRANDS)),
        7 | 8 => format!("{base}, {color}"),
        _ => base,
    };
    let description = format!(
        "{} in {}, {}. Shown in {}; {w} x {h} x {d} cm (W x H x D). {}",
        opening(style, noun),
        material.to_lowercase(),
        pick(rng, profile.benefits),
        color.to_lowercase(),
        pick(rng, profile.care),
    );

    let mut attributes = Map::new();
    attributes.insert("material".into(), material.into());
    attributes.insert("dimensionsCm".into(), json!({ "w": w, "h": h, "d": d }));
    attributes.insert("color".into(), color.into());
    attributes.insert("style".into(), style.into());
    Draft {
        name,
        description,
        price_cents: price_cents(rng, item.usd),
        tags: [
            Some(item.tag),
            Some(profile.tag),
            rng.random_bool(0.4).then_some(style),
            promo_tag(rng),
        ],
        attributes,
    }
}

#[derive(Clone, Copy)]
enum Discipline {
    Fitness,
    Outdoor,
    Cycling,
    BallSports,
    Water,
    Winter,
}

struct Gear {
    noun: &'static str,
    tag: &'static str,
    discipline: Discipline,
    activity: &'static str,
    usd: (u32, u32),
    kg: (f64, f64),
}

const fn gear(
    noun: &'static str,
    tag: &'static str,
    discipline: Discipline,
    activity: &'static str,
    usd: (u32, u32),
    kg: (f64, f64),
) -> Gear {
    Gear {
        noun,
        tag,
        discipline,
        activity,
        usd,
        kg,
    }
}

#[rustfmt::skip]
const GEAR: &[Gear] = &[
    gear("Yoga Mat", "yoga", Discipline::Fitness, "daily yoga and pilates practice", (19, 129), (0.9, 2.5)),
    gear("Resistance Band Set", "strength", Discipline::Fitness, "home strength training", (15, 59), (0.3, 1.2)),
    gear("Adjustable Dumbbells (Pair)", "strength", Discipline::Fitness, "progressive strength training", (99, 599), (10.0, 48.0)),
    gear("Kettlebell", "strength", Discipline::Fitness, "swings, squats and full-body conditioning", (25, 149), (4.0, 32.0)),
    gear("Foam Roller", "recovery", Discipline::Fitness, "post-workout recovery", (15, 59), (0.3, 1.5)),
    gear("Speed Jump Rope", "cardio", Discipline::Fitness, "high-intensity cardio", (10, 49), (0.1, 0.4)),
    gear("Doorway Pull-Up Bar", "strength", Discipline::Fitness, "upper-body training at home", (25, 89), (1.5, 4.0)),
    gear("Boxing Gloves", "boxing", Discipline::Fitness, "bag work and sparring", (29, 149), (0.4, 0.9)),
    gear("Weighted Vest", "strength", Discipline::Fitness, "adding intensity to runs and circuits", (39, 179), (5.0, 20.0)),
    gear("Trail Running Shoes", "running", Discipline::Outdoor, "technical trails and muddy miles", (79, 199), (0.5, 0.7)),
    gear("Trekking Poles", "hiking", Discipline::Outdoor, "long days on steep ground", (29, 199), (0.3, 0.6)),
    gear("Hiking Backpack (35 L)", "hiking", Discipline::Outdoor, "day hikes and hut-to-hut trips", (59, 249), (0.9, 1.6)),
    gear("Backpacking Tent (2-Person)", "camping", Discipline::Outdoor, "lightweight wild camping", (129, 699), (1.0, 2.8)),
    gear("Down Sleeping Bag", "camping", Discipline::Outdoor, "cold nights under the stars", (99, 549), (0.6, 1.6)),
    gear("Camping Stove", "camping", Discipline::Outdoor, "quick meals at camp", (29, 179), (0.1, 0.9)),
    gear("Climbing Harness", "climbing", Discipline::Outdoor, "sport climbing and gym sessions", (49, 149), (0.3, 0.5)),
    gear("Insulated Water Bottle", "hydration", Discipline::Outdoor, "all-day hydration on the move", (15, 49), (0.3, 0.6)),
    gear("Headlamp", "hiking", Discipline::Outdoor, "early starts and late finishes", (19, 99), (0.05, 0.15)),
    gear("Road Cycling Helmet", "cycling", Discipline::Cycling, "fast road rides", (49, 299), (0.2, 0.35)),
    gear("Cycling Gloves", "cycling", Discipline::Cycling, "long rides in any weather", (19, 69), (0.05, 0.15)),
    gear("Rechargeable Bike Light Set", "cycling", Discipline::Cycling, "commuting after dark", (25, 129), (0.1, 0.3)),
    gear("Bike Repair Kit", "cycling", Discipline::Cycling, "roadside fixes", (19, 79), (0.2, 0.6)),
    gear("Gravel Bike", "cycling", Discipline::Cycling, "mixed-terrain adventures", (799, 1200), (8.5, 11.5)),
    gear("Tennis Racket", "tennis", Discipline::BallSports, "baseline rallies and club matches", (49, 279), (0.27, 0.32)),
    gear("Pickleball Paddle Set", "pickleball", Discipline::BallSports, "doubles with friends", (39, 179), (0.6, 1.2)),
    gear("Basketball", "basketball", Discipline::BallSports, "indoor and outdoor courts", (19, 89), (0.6, 0.65)),
    gear("Match Football", "football", Discipline::BallSports, "training and match days", (19, 129), (0.41, 0.45)),
    gear("Volleyball", "volleyball", Discipline::BallSports, "beach and indoor play", (19, 79), (0.26, 0.28)),
    gear("Golf Balls (12-Pack)", "golf", Discipline::BallSports, "distance off the tee", (19, 59), (0.54, 0.56)),
    gear("Badminton Set", "badminton", Discipline::BallSports, "garden games", (29, 119), (1.0, 3.0)),
    gear("Swim Goggles", "swimming", Discipline::Water, "pool training and open water", (12, 49), (0.03, 0.06)),
    gear("Kayak Paddle", "paddling", Discipline::Water, "lakes and sea touring", (59, 299), (0.7, 1.2)),
    gear("Wetsuit", "swimming", Discipline::Water, "cold-water swims and surf", (99, 449), (1.2, 2.5)),
    gear("Inflatable Paddle Board", "paddling", Discipline::Water, "calm water and coastal exploring", (299, 999), (8.0, 13.0)),
    gear("Ski Goggles", "skiing", Discipline::Winter, "bluebird days and whiteouts", (39, 249), (0.15, 0.25)),
    gear("Snow Helmet", "skiing", Discipline::Winter, "resort and backcountry days", (59, 299), (0.35, 0.6)),
    gear("Ice Skates", "skating", Discipline::Winter, "rinks and frozen ponds", (59, 249), (1.2, 2.2)),
];

#[rustfmt::skip]
const SPORTS_BRANDS: &[&str] = &[
    "Summit", "Ridgeline", "Trailhead", "Peakform", "Strideway", "Kinetic", "Ironbark",
    "Breakwater", "Velocity", "Granite", "Outbound", "Fjell", "Torrent", "Bluebird", "Altura",
    "Northstar", "Cairn", "Tallwood", "Swiftwater", "Redline", "Highpoint",
];

const SPORTS_LINES: &[&str] = &[
    "Aero", "Vector", "Ascent", "Drift", "Rally", "Surge", "Tempo", "Nomad", "Terra", "Zenith",
    "Pace", "Ridge", "Flow", "Strike", "Volt", "Crest",
];

#[rustfmt::skip]
const SPORTS_ADJECTIVES: &[&str] = &[
    "Pro", "Ultralight", "Performance", "Training", "Competition", "Elite", "Lightweight",
    "All-Weather", "Expedition", "Everyday", "Carbon", "Endurance", "Tour", "Sport",
];

const LEVELS: &[&str] = &["beginner", "intermediate", "advanced", "professional"];

fn discipline_features(discipline: Discipline) -> &'static [&'static str] {
    match discipline {
        Discipline::Fitness => &[
            "a non-slip grip",
            "durable, easy-clean materials",
            "a compact, storable design",
            "a sweat-resistant finish",
            "a printed exercise guide",
        ],
        Discipline::Outdoor => &[
            "weather-resistant materials",
            "a packable, lightweight build",
            "reinforced high-wear zones",
            "recycled fabrics",
            "glove-friendly adjusters",
        ],
        Discipline::Cycling => &[
            "an aerodynamic profile",
            "reflective details for visibility",
            "tool-free adjustment",
            "a lightweight alloy build",
            "all-weather durability",
        ],
        Discipline::BallSports => &[
            "a tournament-grade construction",
            "consistent bounce and flight",
            "excellent feel and control",
            "durable outer materials",
            "a carry bag for easy transport",
        ],
        Discipline::Water => &[
            "chlorine-resistant materials",
            "anti-fog, UV-protective lenses",
            "quick-drying construction",
            "flexible, sealed seams",
            "a buoyant, stable design",
        ],
        Discipline::Winter => &[
            "a fleece-lined interior",
            "anti-fog, double-layer lenses",
            "adjustable ventilation",
            "a cold-weather-rated build",
            "impact-absorbing padding",
        ],
    }
}

fn sports(rng: &mut StdRng) -> Draft {
    let item = &GEAR[rng.random_range(0..GEAR.len())];
    let brand = pick(rng, SPORTS_BRANDS);
    let adj = pick(rng, SPORTS_ADJECTIVES);
    let line = rng.random_bool(0.8).then(|| pick(rng, SPORTS_LINES));
    let level = LEVELS[weighted(rng, &[35, 35, 22, 8])];
    let weight_kg = round2(rng.random_range(item.kg.0..=item.kg.1));

    let model = match line {
        Some(line) => format!("{brand} {line} {adj}"),
        None => format!("{brand} {adj}"),
    };
    let [f1, f2] = pick_distinct::<2>(rng, discipline_features(item.discipline));
    let noun_lc = bare_noun(item.noun).to_lowercase();
    let plural = is_plural(item.noun);
    let intro = match rng.random_range(0..3) {
        0 => format!(
            "Built for {}, the {model} {noun_lc} {} {f1} and {f2}.",
            item.activity,
            if plural { "have" } else { "has" },
        ),
        1 => format!("Made for {}, with {f1} and {f2}.", item.activity),
        _ => format!(
            "{} and {f2} make {} {brand} {noun_lc} a reliable choice for {}.",
            capitalize(f1),
            if plural { "these" } else { "this" },
            item.activity,
        ),
    };
    let description = format!("{intro} Suited to {level} athletes. Weight: {weight_kg} kg.");

    let mut attributes = Map::new();
    attributes.insert("brand".into(), brand.into());
    attributes.insert("weightKg".into(), weight_kg.into());
    attributes.insert("level".into(), level.into());
    attributes.insert("sport".into(), item.tag.into());
    Draft {
        name: format!("{model} {}", item.noun),
        description,
        price_cents: price_cents(rng, item.usd),
        tags: [
            Some(item.tag),
            rng.random_bool(0.5).then_some(level),
            promo_tag(rng),
            None,
        ],
        attributes,
    }
}

struct Toy {
    noun: &'static str,
    tag: &'static str,
    pieces: Option<(u16, u16)>,
    batteries: Option<&'static str>,
    min_age: u8,
    usd: (u32, u32),
}

const fn toy_item(
    noun: &'static str,
    tag: &'static str,
    pieces: Option<(u16, u16)>,
    batteries: Option<&'static str>,
    min_age: u8,
    usd: (u32, u32),
) -> Toy {
    Toy {
        noun,
        tag,
        pieces,
        batteries,
        min_age,
        usd,
    }
}

#[rustfmt::skip]
const TOYS: &[Toy] = &[
    toy_item("Building Set", "building", Some((80, 1500)), None, 6, (15, 199)),
    toy_item("Jigsaw Puzzle", "puzzles", Some((100, 1500)), None, 8, (12, 39)),
    toy_item("Floor Puzzle", "puzzles", Some((24, 48)), None, 3, (12, 29)),
    toy_item("Plush Toy", "plush", None, None, 0, (12, 49)),
    toy_item("Wooden Train Set", "wooden toys", Some((20, 120)), None, 3, (29, 149)),
    toy_item("Remote Control Car", "rc", None, Some("4 x AA"), 6, (29, 149)),
    toy_item("Dollhouse", "pretend play", Some((15, 60)), None, 3, (49, 200)),
    toy_item("Board Game", "games", Some((40, 200)), None, 8, (19, 59)),
    toy_item("Card Game", "games", Some((54, 120)), None, 7, (9, 25)),
    toy_item("Science Kit", "stem", Some((20, 80)), Some("2 x AA"), 8, (19, 69)),
    toy_item("Art and Craft Set", "arts and crafts", Some((50, 200)), None, 5, (15, 59)),
    toy_item("Marble Run", "stem", Some((60, 250)), None, 5, (25, 99)),
    toy_item("Magnetic Tiles", "building", Some((32, 120)), None, 3, (29, 129)),
    toy_item("Stacking Blocks", "baby", Some((10, 30)), None, 1, (12, 39)),
    toy_item("Kick Scooter", "outdoor", None, None, 5, (39, 149)),
    toy_item("Coding Robot", "stem", Some((30, 150)), Some("rechargeable"), 8, (49, 200)),
    toy_item("Kite", "outdoor", None, None, 6, (12, 49)),
    toy_item("Play Kitchen", "pretend play", Some((10, 40)), Some("3 x AAA"), 3, (59, 200)),
    toy_item("Action Figure", "figures", None, None, 4, (9, 39)),
    toy_item("Walkie-Talkie Set", "outdoor", None, Some("6 x AAA"), 5, (19, 49)),
    toy_item("Musical Activity Cube", "baby", None, Some("2 x AA"), 1, (19, 59)),
    toy_item("Doctor Play Set", "pretend play", Some((10, 25)), None, 3, (15, 39)),
    toy_item("Junior Telescope", "stem", None, None, 8, (39, 149)),
    toy_item("Water Blaster", "outdoor", None, None, 6, (9, 35)),
];

#[rustfmt::skip]
const TOY_THEMES: &[&str] = &[
    "Dinosaur", "Space", "Ocean", "Jungle", "Castle", "Pirate", "Farm", "Fairy", "Robot", "Dragon",
    "Safari", "City", "Rainbow", "Arctic", "Unicorn", "Construction", "Rocket", "Knight", "Volcano",
    "Treehouse", "Mermaid", "Jungle Animal", "Monster Truck", "Superhero", "Wizard", "Circus",
    "Railway", "Moon Base",
];

#[rustfmt::skip]
const TOY_ROLES: &[&str] = &[
    "Explorer", "Adventure", "Quest", "Rescue", "Academy", "Discovery", "Workshop", "Friends",
    "Kingdom", "Expedition", "Patrol", "Island", "Lab", "Garage", "Party", "Hideout", "Studio",
    "Camp", "Crew", "Factory", "Racers",
];

#[rustfmt::skip]
const TOY_BRANDS: &[&str] = &[
    "Tinker & Tot", "Little Sprout", "Wonderbox", "Pipsqueak", "Brightblock", "Hoot & Holler",
    "Puzzlewood", "Jolly Llama", "Starling Toys", "Maple & Moss", "Gigglefish", "Tumbleweed",
    "Busy Bee", "Marbleworks", "Kindlewood", "Tiny Tide",
];

fn toy(rng: &mut StdRng) -> Draft {
    let item = &TOYS[rng.random_range(0..TOYS.len())];
    let theme = pick(rng, TOY_THEMES);
    let role = pick(rng, TOY_ROLES);
    let pieces = item.pieces.map(|(lo, hi)| {
        let n = rng.random_range(lo..=hi);
        // Big sets come in round numbers, like the shop shelf.
        if n >= 100 { n / 50 * 50 } else { n }
    });
    let batteries = match item.batteries {
        Some("rechargeable") => "built-in rechargeable battery (USB-C)".to_owned(),
        Some(kind) if rng.random_bool(0.5) => format!("{kind} (included)"),
        Some(kind) => format!("{kind} (not included)"),
        None => "none".to_owned(),
    };
    let age_range = match (item.min_age, rng.random_range(0..3)) {
        (0, _) => "0-24 months".to_owned(),
        (1, 0) => "12-36 months".to_owned(),
        (min, 0 | 1) => format!("{min}+ years"),
        _ => format!(
            "{}-{} years",
            item.min_age,
            item.min_age + rng.random_range(4..=8)
        ),
    };

    let base = format!("{theme} {role} {}", item.noun);
    let base = if rng.random_bool(0.75) {
        format!("{} {base}", pick(rng, TOY_BRANDS))
    } else {
        base
    };
    let name = match pieces {
        Some(n) if n >= 100 && rng.random_bool(0.6) => format!("{base} ({n} Pieces)"),
        _ => base,
    };

    let benefit = pick(
        rng,
        &[
            "made for hours of imaginative play",
            "designed to build fine motor skills and patience",
            "designed to spark curiosity about how things work",
            "ready to unwrap on birthdays and holidays",
            "perfect for rainy afternoons",
            "made to be shared with friends and family",
        ],
    );
    let mut description = format!(
        "{}, {benefit}.",
        opening(&format!("{theme}-themed"), item.noun)
    );
    if let Some(n) = pieces {
        description.push_str(&format!(" Includes {n} pieces."));
    }
    description.push_str(match item.batteries {
        None => " No batteries needed.",
        Some("rechargeable") => " Recharges over USB-C.",
        Some(_) => " Battery powered.",
    });
    description.push_str(&format!(
        " Recommended for ages {}. Meets EN 71 and ASTM F963 safety standards.",
        age_range.trim_end_matches(" years")
    ));

    let mut attributes = Map::new();
    attributes.insert("ageRange".into(), age_range.into());
    if let Some(n) = pieces {
        attributes.insert("pieces".into(), n.into());
    }
    attributes.insert("batteries".into(), batteries.into());
    attributes.insert("theme".into(), theme.into());
    Draft {
        name,
        description,
        price_cents: price_cents(rng, item.usd),
        tags: [
            Some(item.tag),
            rng.random_bool(0.5).then_some(theme),
            promo_tag(rng),
            None,
        ],
        attributes,
    }
}

#[derive(Clone, Copy)]
enum Aisle {
    Pet,
    Garden,
    Wellness,
    Stationery,
    Pantry,
    Travel,
}

struct Sundry {
    noun: &'static str,
    tag: &'static str,
    aisle: Aisle,
    usd: (u32, u32),
    grams: (u32, u32),
}

const fn sundry(
    noun: &'static str,
    tag: &'static str,
    aisle: Aisle,
    usd: (u32, u32),
    grams: (u32, u32),
) -> Sundry {
    Sundry {
        noun,
        tag,
        aisle,
        usd,
        grams,
    }
}

#[rustfmt::skip]
const SUNDRIES: &[Sundry] = &[
    sundry("Dog Bed", "dogs", Aisle::Pet, (39, 199), (1_200, 4_500)),
    sundry("Cat Scratching Post", "cats", Aisle::Pet, (25, 129), (1_500, 6_000)),
    sundry("Pet Bowl Set", "pets", Aisle::Pet, (15, 59), (300, 1_200)),
    sundry("Dog Leash", "dogs", Aisle::Pet, (15, 49), (100, 350)),
    sundry("Cat Tunnel", "cats", Aisle::Pet, (15, 45), (300, 900)),
    sundry("Dog Harness", "dogs", Aisle::Pet, (19, 69), (150, 500)),
    sundry("Grooming Brush", "pets", Aisle::Pet, (9, 35), (80, 250)),
    sundry("Watering Can", "watering", Aisle::Garden, (15, 69), (400, 1_500)),
    sundry("Pruning Shears", "garden tools", Aisle::Garden, (15, 89), (200, 350)),
    sundry("Raised Garden Bed", "planters", Aisle::Garden, (59, 299), (8_000, 30_000)),
    sundry("Seed Starter Kit", "seeds", Aisle::Garden, (15, 49), (300, 1_200)),
    sundry("Bird Feeder", "wildlife", Aisle::Garden, (15, 79), (300, 1_500)),
    sundry("Garden Kneeler", "garden tools", Aisle::Garden, (19, 59), (800, 3_000)),
    sundry("Herb Planter", "planters", Aisle::Garden, (19, 69), (600, 2_500)),
    sundry("Soy Candle", "candles", Aisle::Wellness, (15, 49), (200, 600)),
    sundry("Essential Oil Set", "aromatherapy", Aisle::Wellness, (19, 69), (150, 400)),
    sundry("Bath Bomb Set", "bath", Aisle::Wellness, (15, 39), (400, 900)),
    sundry("Hand Cream", "skincare", Aisle::Wellness, (9, 35), (60, 150)),
    sundry("Reed Diffuser", "home fragrance", Aisle::Wellness, (19, 69), (300, 700)),
    sundry("Bath Salts", "bath", Aisle::Wellness, (12, 39), (400, 1_100)),
    sundry("Notebook", "notebooks", Aisle::Stationery, (9, 39), (200, 450)),
    sundry("Fountain Pen", "pens", Aisle::Stationery, (19, 149), (20, 60)),
    sundry("Desk Organizer", "desk", Aisle::Stationery, (19, 79), (400, 1_500)),
    sundry("Weekly Planner", "planners", Aisle::Stationery, (15, 45), (250, 600)),
    sundry("Sketchbook", "art supplies", Aisle::Stationery, (12, 39), (300, 900)),
    sundry("Letter Writing Set", "stationery", Aisle::Stationery, (15, 49), (200, 500)),
    sundry("Whole Coffee Beans", "coffee", Aisle::Pantry, (12, 49), (250, 1_000)),
    sundry("Loose-Leaf Tea", "tea", Aisle::Pantry, (9, 35), (100, 250)),
    sundry("Dark Chocolate Gift Box", "chocolate", Aisle::Pantry, (15, 59), (200, 600)),
    sundry("Extra Virgin Olive Oil", "olive oil", Aisle::Pantry, (15, 49), (500, 1_000)),
    sundry("Hot Sauce Trio", "condiments", Aisle::Pantry, (15, 39), (450, 700)),
    sundry("Raw Honey", "honey", Aisle::Pantry, (9, 29), (250, 500)),
    sundry("Granola", "breakfast", Aisle::Pantry, (6, 19), (350, 750)),
    sundry("Packing Cubes (Set of 4)", "packing", Aisle::Travel, (19, 59), (200, 500)),
    sundry("Travel Pillow", "comfort", Aisle::Travel, (15, 49), (150, 400)),
    sundry("Toiletry Bag", "bags", Aisle::Travel, (19, 79), (150, 450)),
    sundry("Passport Holder", "documents", Aisle::Travel, (15, 59), (40, 120)),
    sundry("Weekender Bag", "bags", Aisle::Travel, (59, 300), (700, 1_600)),
    sundry("Universal Travel Adapter", "electricals", Aisle::Travel, (19, 49), (100, 250)),
];

struct AisleProfile {
    kind: &'static str,
    qualifiers: &'static [&'static str],
    /// Sizes, colours or pack options shown after the name: "…, Large".
    variants: &'static [&'static str],
    benefits: &'static [&'static str],
}

const fn aisle_profile(aisle: Aisle) -> AisleProfile {
    match aisle {
        Aisle::Pet => AisleProfile {
            kind: "pet supplies",
            qualifiers: &[
                "Orthopedic",
                "Chew-Resistant",
                "Washable",
                "Reflective",
                "Calming",
                "Non-Slip",
                "Eco-Friendly",
                "Plush",
                "Adjustable",
                "Cosy",
                "Waterproof",
                "Everyday",
                "Durable",
            ],
            variants: &[
                "Small",
                "Medium",
                "Large",
                "Extra Large",
                "Forest Green",
                "Slate Grey",
                "Mustard",
                "Navy",
            ],
            benefits: &[
                "Vet-approved materials, free from harmful chemicals.",
                "Tested by our own office dogs and cats.",
                "Easy to clean when life gets muddy.",
            ],
        },
        Aisle::Garden => AisleProfile {
            kind: "garden",
            qualifiers: &[
                "Galvanized",
                "Heavy-Duty",
                "Ergonomic",
                "Cedar",
                "Self-Watering",
                "Weatherproof",
                "Heirloom",
                "Classic",
                "Compact",
                "Rustproof",
                "Bamboo",
                "Recycled",
                "Handcrafted",
                "Vintage",
            ],
            variants: &[
                "Sage",
                "Terracotta",
                "Charcoal",
                "Natural",
                "Olive",
                "Small",
                "Large",
                "Set of 2",
            ],
            benefits: &[
                "Built to stay outdoors all year round.",
                "Made for balconies, allotments and everything between.",
                "A thoughtful gift for keen gardeners.",
            ],
        },
        Aisle::Wellness => AisleProfile {
            kind: "wellness",
            qualifiers: &[
                "Lavender & Sage",
                "Cedarwood & Vetiver",
                "Eucalyptus Mint",
                "Orange Blossom",
                "Sea Salt & Driftwood",
                "Fig & Cassis",
                "Rose Geranium",
                "Bergamot",
                "Sandalwood",
                "Fresh Linen",
                "Neroli & Amber",
                "White Tea",
                "Wild Fig",
                "Cedar & Smoke",
            ],
            variants: &[
                "Travel Size",
                "Classic",
                "Large",
                "Gift Edition",
                "Refill",
                "Set of 2",
                "Mini Trio",
            ],
            benefits: &[
                "Blended with natural essential oils.",
                "Vegan and cruelty-free.",
                "Hand-poured in small batches.",
            ],
        },
        Aisle::Stationery => AisleProfile {
            kind: "stationery",
            qualifiers: &[
                "Classic",
                "Recycled",
                "Refillable",
                "Travel",
                "Premium",
                "Minimalist",
                "Leather",
                "Everyday",
                "Pocket-Size",
                "Linen-Bound",
                "Dot-Grid",
                "Hardback",
                "Handmade",
            ],
            variants: &[
                "Black",
                "Navy",
                "Forest Green",
                "Terracotta",
                "Sand",
                "Burgundy",
                "A5",
                "A6",
            ],
            benefits: &[
                "Printed on acid-free, fountain-pen-friendly paper.",
                "Designed to make planning a pleasure.",
                "Made from FSC-certified materials.",
            ],
        },
        Aisle::Pantry => AisleProfile {
            kind: "food and drink",
            qualifiers: &[
                "Single-Origin",
                "Organic",
                "Small-Batch",
                "Fair Trade",
                "Artisan",
                "Wildflower",
                "Stone-Ground",
                "Heritage",
                "House Blend",
                "Cold-Pressed",
                "Smoked",
                "Reserve",
                "Limited Harvest",
            ],
            variants: &[
                "Small",
                "Large",
                "Gift Tin",
                "Twin Pack",
                "Family Size",
                "Sampler",
                "Refill Pack",
            ],
            benefits: &[
                "Sourced directly from independent producers.",
                "Made without artificial additives.",
                "Packed fresh in recyclable packaging.",
            ],
        },
        Aisle::Travel => AisleProfile {
            kind: "travel",
            qualifiers: &[
                "Packable",
                "Water-Resistant",
                "Lightweight",
                "Expandable",
                "Compact",
                "Anti-Theft",
                "Carry-On",
                "Recycled Nylon",
                "Weekend",
                "Premium",
                "Essential",
                "Modular",
            ],
            variants: &[
                "Black", "Olive", "Navy", "Sand", "Rust", "Charcoal", "Sky Blue", "Burgundy",
            ],
            benefits: &[
                "Light enough to take on every trip.",
                "Made from recycled, water-resistant fabric.",
                "Backed by a lifetime repair promise.",
            ],
        },
    }
}

#[rustfmt::skip]
const OTHER_BRANDS: &[&str] = &[
    "Meadowlark", "Fernleaf", "Copper Kettle", "Wildroot", "Tallow & Twine", "Good Fettle",
    "Little Harbor", "Bright Acre", "Stillwater", "Oak & Ember", "Nomad Supply", "Pinecrest",
    "Hazelmere", "Brightwork", "Rook & Raven", "Salt & Sparrow", "Field Day", "Kinfield",
    "Mulberry Lane", "Thistledown",
];

#[rustfmt::skip]
const ORIGINS: &[&str] = &[
    "Portugal", "Italy", "Japan", "Vietnam", "United Kingdom", "Germany", "Mexico", "Kenya",
    "Colombia", "India", "Spain", "Canada", "Denmark", "Greece", "United States",
];

fn other(rng: &mut StdRng) -> Draft {
    let item = &SUNDRIES[rng.random_range(0..SUNDRIES.len())];
    let profile = aisle_profile(item.aisle);
    let brand = pick(rng, OTHER_BRANDS);
    let qualifier = pick(rng, profile.qualifiers);
    let origin = pick(rng, ORIGINS);
    let grams = rng.random_range(item.grams.0..=item.grams.1);

    let description = format!(
        "{} from {brand}, made in {origin}. {} {}",
        opening(qualifier, item.noun),
        pick(rng, profile.benefits),
        pick(
            rng,
            &[
                "Ships in plastic-free packaging.",
                "Makes a lovely gift.",
                "A customer favourite.",
                "Limited seasonal stock.",
            ]
        ),
    );

    let mut attributes = Map::new();
    attributes.insert("brand".into(), brand.into());
    attributes.insert("kind".into(), profile.kind.into());
    attributes.insert("origin".into(), origin.into());
    attributes.insert("weightG".into(), grams.into());
    Draft {
        name: if rng.random_bool(0.75) {
            format!(
                "{brand} {qualifier} {}, {}",
                item.noun,
                pick(rng, profile.variants)
            )
        } else {
            format!("{brand} {qualifier} {}", item.noun)
        },
        description,
        price_cents: price_cents(rng, item.usd),
        tags: [Some(item.tag), Some(profile.kind), promo_tag(rng), None],
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn same_seed_and_index_give_the_same_product() {
        for index in [0, 1, 17, 4_999, 9_999_999] {
            assert_eq!(product(42, index), product(42, index));
        }
        let forward: Vec<_> = catalog(7, 200).collect();
        let backward: Vec<_> = (0..200).rev().map(|i| product(7, i)).collect();
        assert!(forward.iter().eq(backward.iter().rev()));
    }

    #[test]
    fn different_seeds_give_different_catalogs() {
        let a: Vec<_> = catalog(1, 100).collect();
        let b: Vec<_> = catalog(2, 100).collect();
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert_eq!(same, 0);
    }

    #[test]
    fn every_field_is_within_its_limits() {
        for p in catalog(2024, 5_000) {
            let name_len = p.name.chars().count();
            assert!((1..=200).contains(&name_len), "name {:?}", p.name);
            let desc_len = p.description.chars().count();
            assert!(
                (1..=2000).contains(&desc_len),
                "description {:?}",
                p.description
            );
            assert!(p.price_cents > 0, "{p:?}");
            assert!(
                matches!(p.price_cents % 100, 0 | 49 | 95 | 99),
                "price {}",
                p.price_cents
            );
            assert!((0..=500).contains(&p.stock), "stock {}", p.stock);
            assert!(CATEGORIES.contains(&p.category));
            assert!((2..=5).contains(&p.tags.len()), "tags {:?}", p.tags);
            for tag in &p.tags {
                assert!(!tag.is_empty());
                assert_eq!(tag, &tag.to_lowercase());
            }
            let tags: HashSet<_> = p.tags.iter().collect();
            assert_eq!(tags.len(), p.tags.len(), "duplicate tags {:?}", p.tags);
            assert!(p.attributes.is_object());
            assert!(!p.name.contains("  ") && p.name.trim() == p.name);
        }
    }

    #[test]
    fn prices_are_believable_per_category() {
        for p in catalog(5, 5_000) {
            let (lo, hi) = match p.category {
                "books" => (800, 6_000),
                "electronics" => (1_500, 250_000),
                "clothing" => (900, 25_000),
                _ => (500, 120_000),
            };
            assert!(
                (lo..=hi).contains(&p.price_cents),
                "{} {} costs {}",
                p.category,
                p.name,
                p.price_cents
            );
        }
    }

    #[test]
    fn attributes_have_the_category_keys() {
        for p in catalog(9, 3_000) {
            let attrs = &p.attributes;
            let keys: &[&str] = match p.category {
                "clothing" => &["sizes", "color", "material"],
                "electronics" => &["brand", "warrantyMonths"],
                "books" => &["author", "pages", "format", "isbn13"],
                "home" => &["material", "dimensionsCm", "color"],
                "sports" => &["brand", "weightKg", "level"],
                "toys" => &["ageRange", "batteries"],
                _ => &["brand"],
            };
            for key in keys {
                assert!(
                    attrs.get(key).is_some(),
                    "{} lacks {key}: {attrs}",
                    p.category
                );
            }
            if p.category == "books" {
                let isbn = attrs["isbn13"].as_str().unwrap();
                assert_eq!(isbn.len(), 13);
                let sum: u32 = isbn
                    .bytes()
                    .enumerate()
                    .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
                    .sum();
                assert_eq!(sum % 10, 0, "bad ISBN {isbn}");
            }
            if p.category == "clothing" {
                assert!(!attrs["sizes"].as_array().unwrap().is_empty());
            }
        }
    }

    #[test]
    fn skus_are_unique() {
        let skus: HashSet<_> = catalog(3, 20_000).map(|p| p.sku).collect();
        assert_eq!(skus.len(), 20_000);
        assert_eq!(product(3, 9_999_999).sku.len(), "ELE-0000000-00".len());
    }

    #[test]
    fn every_category_appears_and_some_are_out_of_stock() {
        let products: Vec<_> = catalog(11, 5_000).collect();
        for category in CATEGORIES {
            assert!(
                products.iter().any(|p| p.category == category),
                "no {category}"
            );
        }
        let out = products.iter().filter(|p| p.stock == 0).count();
        assert!(out > 50 && out < 1_000, "{out} out of stock");
        let typical = products
            .iter()
            .filter(|p| (5..=150).contains(&p.stock))
            .count();
        assert!(typical > products.len() / 2);
    }

    #[test]
    fn names_are_mostly_distinct() {
        let names: HashSet<_> = catalog(13, 5_000).map(|p| p.name).collect();
        assert!(names.len() > 4_500, "only {} distinct names", names.len());
    }
}
