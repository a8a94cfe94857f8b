//! A component of an unrelated world: it exports none of the plugin hooks.

wit_bindgen::generate!({
    inline: "
        package acme:widgets;
        world widget {
            export spin: func(times: u32) -> u32;
        }
    ",
});

struct Widget;

impl Guest for Widget {
    fn spin(times: u32) -> u32 {
        times.wrapping_mul(2)
    }
}

export!(Widget);
