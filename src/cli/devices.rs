use likely::gpu::list_adapters;

#[derive(clap::Args)]
pub struct DevicesArgs {
    /// One JSON object: {"adapters": [...]}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DevicesArgs) -> likely::Result<i32> {
    let adapters = list_adapters();
    if args.json {
        outln!("{}", serde_json::json!({ "adapters": adapters }));
        return Ok(0);
    }
    if adapters.is_empty() {
        outln!(
            "no GPU adapters found (WGPU_BACKEND={})",
            std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "unset".into())
        );
        outln!(
            "on Linux without a GPU, install Mesa's lavapipe: apt-get install mesa-vulkan-drivers"
        );
        return Ok(0);
    }
    for (i, a) in adapters.iter().enumerate() {
        let yes = |b: bool| if b { "yes" } else { "no" };
        outln!("[{i}] {}", a.name);
        outln!(
            "    backend: {}   type: {}{}",
            a.backend,
            a.device_type,
            if a.software { " (software)" } else { "" }
        );
        outln!("    driver: {} {}", a.driver, a.driver_info);
        outln!(
            "    max storage binding: {}   max buffer: {}",
            bytes(a.max_storage_binding),
            bytes(a.max_buffer)
        );
        outln!(
            "    SUBGROUP: {} (size {})   SHADER_F64: {}   TIMESTAMP_QUERY: {}",
            yes(a.subgroup),
            a.subgroup_size,
            yes(a.shader_f64),
            yes(a.timestamp_query)
        );
    }
    Ok(0)
}

fn bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB ({b} bytes)", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{} MiB ({b} bytes)", b >> 20)
    }
}
