//! Generated protobuf and gRPC code, one module per versioned package.

/// Encoded descriptors of every Jupiter package, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/jupiter_descriptor.bin"));

pub mod circe {
    pub mod worker {
        pub mod v1 {
            tonic::include_proto!("jupiter.circe.worker.v1");
        }
    }
    pub mod home {
        pub mod v1 {
            tonic::include_proto!("jupiter.circe.home.v1");
        }
    }
}

pub mod wave {
    pub mod home {
        pub mod v1 {
            tonic::include_proto!("jupiter.wave.home.v1");
        }
    }
    pub mod worker {
        pub mod v1 {
            tonic::include_proto!("jupiter.wave.worker.v1");
        }
    }
}

pub mod drupe {
    pub mod droplet {
        pub mod v1 {
            tonic::include_proto!("jupiter.drupe.droplet.v1");
        }
    }
    pub mod central {
        pub mod v1 {
            tonic::include_proto!("jupiter.drupe.central.v1");
        }
    }
}
