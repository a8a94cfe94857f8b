//! A component that imports and exports `sluice:plugin@1.0.0`: a future major version this
//! host does not speak. Loading it must fail with a message naming the version.

wit_bindgen::generate!({
    inline: "
        package sluice:plugin@1.0.0;
        interface log {
            write: func(message: string);
        }
        world plugin {
            import log;
            export describe: func() -> string;
        }
    ",
});

struct WrongVersion;

impl Guest for WrongVersion {
    fn describe() -> String {
        sluice::plugin::log::write("describe");
        "wrong-version".into()
    }
}

export!(WrongVersion);
